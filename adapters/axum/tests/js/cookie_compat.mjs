// The Auth0 Next.js SDK's own cookie code, driven by tokenkeeper-axum's
// cookie compatibility test (tests/cookie_compat.rs). One JSON command on
// stdin, one JSON answer on stdout.
//
// The package is ESM-only and its `exports` block deep imports, so its
// files are imported by path.
import * as cookies from './node_modules/@auth0/nextjs-auth0/dist/server/cookies.js';
import { StatelessSessionStore } from './node_modules/@auth0/nextjs-auth0/dist/server/session/stateless-session-store.js';
import { generateSessionCookie } from '@auth0/nextjs-auth0/testing';

const input = JSON.parse(await new Promise((resolve) => {
  let text = '';
  process.stdin.on('data', (d) => { text += d; });
  process.stdin.on('end', () => resolve(text));
}));

const requestCookies = (pairs) => {
  const headers = new Headers();
  if (pairs && Object.keys(pairs).length) {
    headers.set('cookie', Object.entries(pairs).map(([k, v]) => `${k}=${v}`).join('; '));
  }
  return new cookies.RequestCookies(headers);
};

const responseCookies = (res) => res.getAll().map((c) => ({
  name: c.name, value: c.value, maxAge: c.maxAge, httpOnly: c.httpOnly, sameSite: c.sameSite, path: c.path,
}));

const store = new StatelessSessionStore({ secret: input.secret });
let out;
switch (input.op) {
  case 'store_set': {
    const req = requestCookies(input.cookies);
    const res = new cookies.ResponseCookies(new Headers());
    await store.set(req, res, input.session);
    out = { cookies: responseCookies(res) };
    break;
  }
  case 'store_get': {
    const session = await store.get(requestCookies(input.cookies));
    out = { session };
    break;
  }
  case 'generate': {
    out = { jwe: await generateSessionCookie(input.session, { secret: input.secret }) };
    break;
  }
  case 'encrypt': {
    out = { jwe: await cookies.encrypt(input.payload, input.secret, input.exp) };
    break;
  }
  case 'decrypt': {
    const result = await cookies.decrypt(input.jwe, input.secret);
    out = { payload: result ? result.payload : null, header: result ? result.protectedHeader : null };
    break;
  }
  case 'get_chunked': {
    out = { value: cookies.getChunkedCookie(input.name, requestCookies(input.cookies)) ?? null };
    break;
  }
  default:
    throw new Error(`unknown op ${input.op}`);
}
process.stdout.write(JSON.stringify(out));
