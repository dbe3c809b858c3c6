import { SqlClient } from "@effect/sql"
import { expect, layer } from "@effect/vitest"
import { Effect, Layer, Logger, LogLevel } from "effect"
import { inject } from "vitest"
import { appConfigFrom } from "../../src/layers/platform/AppConfigLive.js"
import { DatabaseLive } from "../../src/layers/platform/DatabaseLive.js"
import { LedgerKind } from "../../src/services/credits/LedgerKind.js"
import { AppConfig } from "../../src/services/platform/AppConfig.js"

/**
 * The ledger kinds are listed once, in services/credits/LedgerKind.ts; the shipped migration 0002 wrote
 * them into a CHECK constraint that can no longer be edited. This reads the constraint Postgres holds,
 * so the list and the database cannot drift apart unnoticed.
 */
const MigratedDatabase = DatabaseLive.pipe(
  Layer.provide(Layer.effect(AppConfig, appConfigFrom({ DATABASE_URL: inject("databaseUrl"), LOG_LEVEL: "silent" }))),
  Layer.provide(Logger.minimumLogLevel(LogLevel.None))
)

/** The quoted literals of a CHECK constraint as pg_get_constraintdef prints it: kind = ANY (ARRAY['a'::text, ...]). */
const literalsOf = (definition: string) => [...definition.matchAll(/'([^']*)'::text/g)].map((match) => match[1]!)

layer(MigratedDatabase)("ledger kinds", (it) => {
  it.effect("the CHECK constraint on credit_ledger.kind allows exactly the kinds LedgerKind lists", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const rows = yield* sql<{ definition: string }>`
        SELECT pg_get_constraintdef(c.oid) AS definition
        FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
        WHERE c.conrelid = 'credit_ledger'::regclass AND c.contype = 'c' AND a.attname = 'kind'`
      // The refund_of and delta checks mention kind too; the list is the one comparing kind with an ARRAY.
      const lists = rows.map((row) => row.definition).filter((definition) => /kind = ANY \(ARRAY\[/.test(definition))
      expect(lists).toHaveLength(1)
      expect(literalsOf(lists[0]!).toSorted()).toEqual([...LedgerKind.literals].toSorted())
    }))

  it.effect("reading the constraint sees what Postgres enforces: a kind outside the list is refused", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const [user] = yield* sql<{ id: string }>`
        INSERT INTO users (email, password_hash) VALUES (${`kind-${Date.now()}@test.local`}, 'x') RETURNING id`
      const refused = yield* sql`
        INSERT INTO credit_ledger (user_id, delta, balance_after, kind, reason, idempotency_key)
        VALUES (${user!.id}, 1, 1, 'gift', 'not a kind', ${`gift:${user!.id}`})`.pipe(Effect.flip)
      expect(String(refused.cause)).toMatch(/credit_ledger_kind_check/)
    }))
})
