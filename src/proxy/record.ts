/**
 * The JSON records `wirelayer proxy --json` prints, and workers forward to their primary: a
 * leg's model event (the listen/connect record with the flow's id), and the last record of the
 * proxy's counters.
 */
import type { Client, Server } from '../connection/index.js';
import { type ModelEvent, modelRecord } from '../transport/record.js';
import type { ProxyStats } from './context.js';
import type { FlowMode } from './modes.js';

/** A leg's event: `{event, driver, role, flow, ...extra, ...state}`. */
export function flowRecord(
  event: ModelEvent,
  mode: FlowMode,
  conn: Client | Server,
  flow: string,
  extra?: Readonly<Record<string, unknown>>,
): Record<string, unknown> {
  return modelRecord(event, mode.scheme, conn, { flow, ...extra });
}

/** The proxy's counters, snake_case as the other records: `{event: "stats", ...extra, ...}`. */
export function statsRecord(
  stats: ProxyStats,
  extra?: Readonly<Record<string, unknown>>,
): Record<string, unknown> {
  const t = stats.transparent;
  return {
    event: 'stats',
    ...extra,
    flows: stats.flows,
    live_flows: stats.liveFlows,
    passthrough: stats.passthrough,
    flow_errors: stats.flowErrors,
    hook_errors: stats.hookErrors,
    hook_drops: stats.hookDrops,
    queue_drops: stats.queueDrops,
    impair: stats.impair,
    transparent: {
      connections: t.connections,
      redirected: t.redirected,
      destinations: t.destinations,
      live_destinations: t.liveDestinations,
      self_addressed: t.selfAddressed,
      no_destination: t.noDestination,
      destination_limit_drops: t.destinationLimitDrops,
      pending_drops: t.pendingDrops,
      destination_failures: t.destinationFailures,
    },
    proxy_protocol: stats.proxyProtocol,
  };
}
