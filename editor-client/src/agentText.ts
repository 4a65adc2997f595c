// What an agent CLI step's stream said, as the Runs view shows it.
import type { AgentState } from './protocol';

/** `950`, `43.6k`, `1.2M`. */
export function formatTokens(count: number): string {
  if (count < 1000) {
    return String(count);
  }
  if (count < 1_000_000) {
    return `${(count / 1000).toFixed(1)}k`;
  }
  return `${(count / 1_000_000).toFixed(1)}M`;
}

/** `5 turns · 43.8k tokens · $0.0412`: what the CLI reported so far, '' if nothing. */
export function agentUsage(agent: AgentState): string {
  const parts: string[] = [];
  if (agent.turns !== null) {
    parts.push(agent.turns === 1 ? '1 turn' : `${agent.turns} turns`);
  }
  if (agent.input_tokens !== null || agent.output_tokens !== null) {
    parts.push(`${formatTokens((agent.input_tokens ?? 0) + (agent.output_tokens ?? 0))} tokens`);
  }
  if (agent.cost_usd !== null) {
    parts.push(`$${agent.cost_usd.toFixed(4)}`);
  }
  return parts.join(' · ');
}

/** Tooltip lines: the agent, its usage in full, what it does now, and the last thing it said. */
export function agentTooltip(agent: AgentState): string[] {
  const lines = [`agent: ${agent.cli}` + (agent.session_id ? ` (session ${agent.session_id})` : '')];
  if (agent.input_tokens !== null || agent.output_tokens !== null) {
    lines.push(`tokens: ${agent.input_tokens ?? 0} in, ${agent.output_tokens ?? 0} out`);
  }
  const usage = agentUsage(agent);
  if (usage) {
    lines.push(`usage: ${usage}`);
  }
  if (agent.action) {
    lines.push(`doing: ${agent.action}`);
  }
  if (agent.last_message) {
    lines.push(`last message:\n${agent.last_message}`);
  }
  return lines;
}
