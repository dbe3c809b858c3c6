import type { ReadinessReport } from "../../services/platform/Health.js"

/** The readiness route's answer (status and body), shared by its HttpApi handler and the Node-level probe path. */
export const readinessAnswer = (report: ReadinessReport) => ({
  status: report.ready ? 200 : 503,
  body: JSON.stringify({
    status: report.ready ? "ready" : "not_ready",
    ...(report.reason === undefined ? {} : { reason: report.reason }),
    checks: report.checks
  })
})
