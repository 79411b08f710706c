// Run a JavaScript tenant's code in plain Node, without building it, for its unit tests:
//
//     node --import "$SDK_JS_DIR/testing.mjs" --test      # SDK_JS_DIR: python -c 'import
//                                                         # smcp_box_sdk; print(smcp_box_sdk.JS_DIR)'
//
// Registers module hooks (testing-hooks.mjs) so that "smcp-box-sdk" is this SDK and the world's
// host interface "smcp:box/host@1.0.0" is an in-memory stand-in (testing-host.mjs), which a
// test reaches as "smcp-box-sdk/testing": `host()` is the current MemoryHost (its kv, config,
// logs and notifications), `useBackend(x)` replaces it.

import { register } from "node:module";

register("./testing-hooks.mjs", import.meta.url);
