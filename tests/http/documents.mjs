// Prints every GraphQL document the browser code sends, as JSON: {name: document}.
import { DOCUMENTS } from "../../app/static/dashboard/api.js";
import { TRACK_MUTATION } from "../../app/static/signals.js";

process.stdout.write(`${JSON.stringify({ ...DOCUMENTS, TRACK_MUTATION })}\n`);
