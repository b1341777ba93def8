/**
 * The read side: projections, their runner, read stores and the read-side API.
 */
export { createProjectionRunner, rebuild, headPosition, countEvents } from './runner.ts';
export type { ProjectionRunner, RunnerOptions, RunnerState, Lag, WaitOptions, RebuildOptions, RebuildResult } from './runner.ts';
export { readModelProjection, READ_MODEL_PROJECTION } from './read-model.ts';
export { createReadSide } from './read-side.ts';
export type { ReadSide, ReadSideOptions, PageRequest, AuditPage, DeviceCounts, HourlyQuery, Dashboard } from './read-side.ts';
export { deviceStateAfter, deviceStateAt } from './time-travel.ts';
export { openReadStore, readStoreUrl } from './open-read-store.ts';
export { createMemoryReadStore } from './stores/memory.ts';
export { createSqliteReadStore, type SqliteReadStoreOptions } from './stores/sqlite.ts';
export { createPostgresReadStore, type PostgresReadStoreOptions } from './stores/postgres.ts';
export { ProjectionError, type ProjectionErrorCode } from './errors.ts';
export { decodeRecorded, type ProjectedEvent } from './projected-event.ts';
export type { DeviceSummary, DeviceSnapshot, DeviceRow } from './device-snapshot.ts';
export type {
  AuditEntry,
  AuditAction,
  FailureStreak,
  HourlyRow,
  Projection,
  ReadStore,
  ReadTx,
  ReadModelDump,
} from './read-store.ts';
export { DEFAULT_MIN_FAILURES, DEFAULT_MIN_DISTINCT_DAYS } from './failure-streaks.ts';
