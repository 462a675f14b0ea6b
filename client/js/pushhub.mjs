/*! pushhub.mjs: pushhub.js as an ES module.
 *
 *   import { PushHub } from "https://HOST/static/pushhub.mjs";
 *   const client = PushHub.connect({ blog: "city-marathon", onchange(c) { ... } });
 *
 * pushhub.js stays one classic file (it also runs as a <script>); importing it for its effect
 * evaluates it once and leaves the API on globalThis, which this module re-exports.
 */
import "./pushhub.js";

export const PushHub = globalThis.PushHub;
export const connect = PushHub.connect;
export const Client = PushHub.Client;
export const compareEntries = PushHub.compareEntries;
export default PushHub;
