import type { MixSettings } from "../../src/services/videoMixer/MixSettings.js"

/** A generate's settings as the web app sends them: one plain output (1 credit), with `overrides`. */
export const mixSettings = (overrides: Partial<MixSettings> = {}): MixSettings => ({
  enableOrderMixing: false,
  enableDifferentStart: false,
  enableGroupMixing: false,
  groupMixingMode: "sequential",
  enableSpeedVariations: false,
  speedMin: 1,
  speedMax: 1,
  metadataSource: "capcut",
  videoBitrate: "low",
  videoResolution: "480p",
  frameRate: 30,
  aspectRatio: "9:16",
  durationType: "original",
  smartDistribution: false,
  distributionMode: "equal",
  audioOption: "keep",
  ...overrides
})
