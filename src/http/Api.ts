import { HttpApi, OpenApi } from "@effect/platform"
import { AdminApi } from "./jobs/AdminApi.js"
import { AuthApi } from "./accounts/AuthApi.js"
import { CreditsApi } from "./credits/CreditsApi.js"
import { GenerationsApi } from "./generations/GenerationsApi.js"
import { HealthApi } from "./platform/HealthApi.js"
import { PaymentsApi } from "./payments/PaymentsApi.js"
import { UploadsApi } from "./uploads/UploadsApi.js"
import { VideoMixerApi } from "./videoMixer/VideoMixerApi.js"
import { AvatarCreatorApi, AvatarPresetsApi } from "./avatarCreator/AvatarCreatorApi.js"
import { LoopingFlowApi } from "./loopingFlow/LoopingFlowApi.js"

/** The whole HTTP contract; OpenAPI 3.1 at /openapi.json and Swagger UI at /docs are generated from it. */
export class Api extends HttpApi.make("lumiku")
  .add(HealthApi)
  .add(AuthApi)
  .add(CreditsApi)
  .add(GenerationsApi)
  .add(AdminApi)
  .add(PaymentsApi)
  .add(UploadsApi)
  .add(VideoMixerApi)
  .add(AvatarCreatorApi)
  .add(AvatarPresetsApi)
  .add(LoopingFlowApi)
  .annotate(OpenApi.Title, "Lumiku API")
  .annotate(OpenApi.Description, "Every error answers { success: false, error, message, code, requestId }.") {}
