// MeshHook's web app as a webhook sender and a browser meet it, re-built for
// meshhook-health's tests (written here, not MeshHook's code): its webhook
// route `POST /api/hooks/:slug` with node-postgres exactly as MeshHook uses
// it — one `pg.Pool` from DATABASE_URL with node-postgres's defaults (no
// connection timeout, 10 clients) and no 'error' listener, so that the
// process dies when the database drops an idle connection, as the real app
// does — and its server-rendered login page. Answers as SvelteKit's
// adapter-node gives them (status, content type, body); see the fixtures'
// README for what the real app answered.
//
// Usage: DATABASE_URL=postgres://… PORT=… node server.mjs

import crypto from "node:crypto";
import http from "node:http";
import pg from "pg";

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });

const LOGIN_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in · MeshHook</title></head>
<body><main><h1>Sign in</h1><form method="post"><input name="email" type="email">
<button>Send magic link</button></form></main></body></html>`;

/// SvelteKit refuses a cross-site form POST before any route runs.
const FORM_TYPES = ["application/x-www-form-urlencoded", "multipart/form-data", "text/plain"];

function send(res, status, type, body, extra = {}) {
  const headers = { ...extra };
  if (type) headers["content-type"] = type;
  res.writeHead(status, headers);
  res.end(body);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

async function webhook(req, res, slug) {
  if (req.method !== "POST") {
    return send(res, 405, "text/plain;charset=UTF-8", `${req.method} method not allowed`, { allow: "POST" });
  }
  const type = (req.headers["content-type"] || "").split(";")[0].trim().toLowerCase();
  const origin = req.headers.origin;
  if (FORM_TYPES.includes(type) && origin !== `http://${req.headers.host}`) {
    return send(res, 403, "text/plain;charset=UTF-8", "Cross-site POST form submissions are forbidden");
  }
  const bodyText = await readBody(req);
  const headers = req.headers;
  const secret = process.env.DEFAULT_WEBHOOK_SECRET;
  const sig = headers["x-signature"] || headers["x-hub-signature-256"];
  if (secret && sig) {
    const expected = `sha256=${crypto.createHmac("sha256", secret).update(bodyText).digest("hex")}`;
    if (sig !== expected) return send(res, 401, "text/plain;charset=UTF-8", "invalid signature");
  }
  try {
    const found = await pool.query(
      `select id, project_id from workflow_definitions
       where slug=$1 order by version desc limit 1`,
      [slug],
    );
    const wf = found.rows[0] ?? null;
    if (!wf) return send(res, 404, "text/plain;charset=UTF-8", "unknown workflow");
    const run = await pool.query(
      `insert into workflow_runs (project_id, workflow_id, status)
       values ($1,$2,'running') returning id`,
      [wf.project_id, wf.id],
    );
    await pool.query(
      `insert into workflow_events (run_id, type, payload)
       values ($1, 'run_created', $2::jsonb)`,
      [run.rows[0].id, JSON.stringify({ headers, body: bodyText })],
    );
    return send(res, 202, null, "");
  } catch (error) {
    // SvelteKit's answer to an error a route throws.
    console.error(error.message);
    return send(res, 500, "application/json", JSON.stringify({ message: "Internal Error" }));
  }
}

const server = http.createServer(async (req, res) => {
  const host = req.headers.host || "";
  const url = new URL(req.url, `http://${host || "localhost"}`);
  // hooks.server.js: www. goes to the bare host.
  if (host.startsWith("www.")) {
    return send(res, 301, null, "", { location: `http://${host.slice(4)}${req.url}` });
  }
  const hook = url.pathname.match(/^\/api\/hooks\/([^/]+)$/);
  if (hook) return webhook(req, res, decodeURIComponent(hook[1]));
  if (url.pathname === "/auth/login" || url.pathname === "/") {
    return send(res, 200, "text/html", LOGIN_PAGE, { "x-sveltekit-page": "true" });
  }
  return send(res, 404, "text/html", "<!doctype html><h1>404</h1><p>Not found</p>");
});

server.listen(Number(process.env.PORT), process.env.HOST || "127.0.0.1");
process.on("SIGTERM", () => server.close(() => process.exit(0)));
