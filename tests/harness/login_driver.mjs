// Browser stand-in for the provider's devInteractions pages.
//
// Drives an authorization request over real HTTP the way a browser would:
// GET the authorization URL, follow redirects manually (with a small cookie
// jar), submit the login form, submit the consent form, and stop at the first
// redirect that leaves the issuer's origin (the client's redirect_uri). The
// callback URL is returned without being requested: exchanging the code is the
// job of the Rust side.

const MAX_STEPS = 30;

export class CookieJar {
  #cookies = new Map(); // name -> { value, path }

  store(response) {
    const lines = typeof response.headers.getSetCookie === 'function'
      ? response.headers.getSetCookie()
      : [];
    for (const line of lines) {
      const [pair, ...attributes] = line.split(';').map((s) => s.trim());
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      let path = '/';
      let expired = false;
      for (const attribute of attributes) {
        const [k, v = ''] = attribute.split('=');
        const key = k.toLowerCase();
        if (key === 'path' && v) path = v;
        if (key === 'max-age' && Number(v) <= 0) expired = true;
        if (key === 'expires' && Date.parse(v) <= Date.now()) expired = true;
      }
      const id = `${name}\u0000${path}`;
      if (expired) {
        this.#cookies.delete(id);
      } else {
        this.#cookies.set(id, { name, value, path });
      }
    }
  }

  header(url) {
    const { pathname } = new URL(url);
    const pairs = [];
    for (const { name, value, path } of this.#cookies.values()) {
      if (pathname === path || pathname.startsWith(path.endsWith('/') ? path : `${path}/`) || path === '/') {
        pairs.push(`${name}=${value}`);
      }
    }
    return pairs.join('; ');
  }
}

function formAction(html, baseUrl) {
  const match = /<form[^>]*action="([^"]+)"/i.exec(html);
  if (!match) return undefined;
  const action = match[1].replaceAll('&amp;', '&');
  return new URL(action, baseUrl).href;
}

function decodeHtml(text) {
  return text
    .replace(/<[^>]+>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 2000);
}

export class LoginError extends Error {
  constructor(message, trail) {
    super(message);
    this.trail = trail;
  }
}

/**
 * @param {object} opts
 * @param {string} opts.authorizationUrl full authorization request URL
 * @param {string} opts.issuer the provider's issuer (its origin bounds the walk)
 * @param {string} opts.login the login id to use (any value is accepted)
 * @param {string} [opts.password]
 * @param {CookieJar} [opts.jar] the browser's cookies (kept by the caller
 *   for a later logout at the provider)
 * @returns {Promise<{callbackUrl: string, trail: string[]}>}
 */
export async function driveLogin({
  authorizationUrl, issuer, login, password = 'password', jar = new CookieJar(),
}) {
  const issuerOrigin = new URL(issuer).origin;
  const trail = [];

  let method = 'GET';
  let url = authorizationUrl;
  let body;

  for (let step = 0; step < MAX_STEPS; step += 1) {
    if (new URL(url).origin !== issuerOrigin) {
      trail.push(`stop at ${url}`);
      return { callbackUrl: url, trail };
    }

    const headers = { accept: 'text/html', 'user-agent': 'tokenkeeper-harness-login/1' };
    const cookie = jar.header(url);
    if (cookie) headers.cookie = cookie;
    if (body !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded';

    const response = await fetch(url, {
      method, headers, body, redirect: 'manual',
    });
    jar.store(response);
    trail.push(`${method} ${new URL(url).pathname} -> ${response.status}`);

    if (response.status >= 300 && response.status < 400) {
      const location = response.headers.get('location');
      if (!location) {
        throw new LoginError(`redirect ${response.status} without Location at ${url}`, trail);
      }
      await response.arrayBuffer();
      url = new URL(location, url).href;
      method = 'GET';
      body = undefined;
      continue;
    }

    const html = await response.text();
    if (response.status !== 200) {
      throw new LoginError(`unexpected ${response.status} at ${url}: ${decodeHtml(html)}`, trail);
    }

    const action = formAction(html, url);
    if (!action) {
      throw new LoginError(`no form on page ${url}: ${decodeHtml(html)}`, trail);
    }

    const prompt = /name="prompt" value="([^"]+)"/.exec(html)?.[1];
    if (prompt === 'login') {
      body = new URLSearchParams({ prompt: 'login', login, password }).toString();
    } else if (prompt === 'consent') {
      body = new URLSearchParams({ prompt: 'consent' }).toString();
    } else {
      throw new LoginError(`unknown interaction page (prompt=${prompt}) at ${url}`, trail);
    }
    method = 'POST';
    url = action;
  }

  throw new LoginError(`too many steps (>${MAX_STEPS})`, trail);
}
