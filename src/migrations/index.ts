import type { Effect } from "effect"
import type { SqlClient } from "@effect/sql"
import users from "./0001_users.js"
import creditLedger from "./0002_credit_ledger.js"
import retiredRefreshTokens from "./0003_retired_refresh_tokens.js"
import normalizeEmails from "./0004_normalize_emails.js"
import ledgerRequestedAmount from "./0005_ledger_requested_amount.js"
import generations from "./0006_generations.js"
import payments from "./0007_payments.js"
import uploads from "./0008_uploads.js"
import videoMixer from "./0009_video_mixer.js"
import avatarCreator from "./0010_avatar_creator.js"
import loopingFlow from "./0011_looping_flow.js"

/**
 * Every schema migration, in order. Ids are permanent: add new ones at the end, never edit one that
 * has shipped. Each runs in the migrator's transaction, under the migration advisory lock.
 */
export const migrations: Record<string, Effect.Effect<unknown, unknown, SqlClient.SqlClient>> = {
  "0001_users": users,
  "0002_credit_ledger": creditLedger,
  "0003_retired_refresh_tokens": retiredRefreshTokens,
  "0004_normalize_emails": normalizeEmails,
  "0005_ledger_requested_amount": ledgerRequestedAmount,
  "0006_generations": generations,
  "0007_payments": payments,
  "0008_uploads": uploads,
  "0009_video_mixer": videoMixer,
  "0010_avatar_creator": avatarCreator,
  "0011_looping_flow": loopingFlow
}
