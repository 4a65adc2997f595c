"""Steps whose agent works on another machine: launched through a service's API, followed by polling,
its work brought back into the step's branch through a git remote.

`poller` follows every such agent of the process with one timer; `cursor_api` speaks Cursor's Cloud
Agents REST API; `remote_branches` moves commits between the step's worktree and the remote;
`cursor_cloud` is the `agent: {use: cursor-cloud}` step that puts them together.
"""
