/**
 * Whether trace spans are made at all. No exporter (no Tracer layer) is wired in this project, so
 * every span (`Effect.fn` operations, `sql.execute`, the HTTP server span) was built, timed and
 * dropped for nobody, on every request. Off: `Effect.fn` stays the house style and its spans come
 * back, with the HTTP span, by setting this once an exporter is added.
 */
export const TRACING_ENABLED = false
