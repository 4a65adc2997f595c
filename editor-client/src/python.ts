// The interpreter selected in the Python extension (ms-python.python), when it is installed.
// Typed here by hand for the two calls used, rather than depending on its npm API package.
import * as vscode from 'vscode';

interface EnvironmentPath {
  id: string;
  path: string;
}

interface PythonExtensionApi {
  environments?: {
    getActiveEnvironmentPath(resource?: vscode.Uri): EnvironmentPath;
    resolveEnvironment(environment: EnvironmentPath): Promise<{ executable: { uri?: vscode.Uri } } | undefined>;
    onDidChangeActiveEnvironmentPath: vscode.Event<unknown>;
  };
}

async function pythonApi(): Promise<PythonExtensionApi['environments']> {
  const extension = vscode.extensions.getExtension<PythonExtensionApi>('ms-python.python');
  if (!extension) {
    return undefined;
  }
  try {
    const api = extension.isActive ? extension.exports : await extension.activate();
    return api?.environments;
  } catch {
    // A Python extension that fails to start must not keep treeflow from starting.
    return undefined;
  }
}

export async function activeInterpreter(resource: vscode.Uri | undefined): Promise<string | undefined> {
  const environments = await pythonApi();
  if (!environments) {
    return undefined;
  }
  try {
    const active = environments.getActiveEnvironmentPath(resource);
    const resolved = await environments.resolveEnvironment(active);
    return resolved?.executable.uri?.fsPath ?? active.path;
  } catch {
    return undefined;
  }
}

export async function onDidChangeInterpreter(listener: () => void): Promise<vscode.Disposable> {
  const environments = await pythonApi();
  return environments ? environments.onDidChangeActiveEnvironmentPath(listener) : new vscode.Disposable(() => {});
}
