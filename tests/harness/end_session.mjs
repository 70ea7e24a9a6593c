// The browser's side of RP-less logout at the provider: GET /session/end
// with the login's cookies, then submit the confirmation form ("Yes, sign
// me out": logout=yes), which makes oidc-provider end the session and send
// a back-channel logout token to every client of it that registered a
// backchannel_logout_uri.

/**
 * @param {object} opts
 * @param {string} opts.issuer
 * @param {import('./login_driver.mjs').CookieJar} opts.jar the login's cookies
 * @returns {Promise<string[]>} the requests made, with their statuses
 */
export async function endSession({ issuer, jar }) {
  const trail = [];
  const start = `${issuer}/session/end`;
  const page = await fetch(start, {
    headers: { accept: 'text/html', cookie: jar.header(start) },
    redirect: 'manual',
  });
  jar.store(page);
  const html = await page.text();
  trail.push(`GET /session/end -> ${page.status}`);
  const action = /<form[^>]*action="([^"]+)"/i.exec(html)?.[1]?.replaceAll('&amp;', '&');
  const xsrf = /name="xsrf" value="([^"]+)"/.exec(html)?.[1];
  if (!action || !xsrf) {
    trail.push('no logout form');
    return trail;
  }
  const confirm = new URL(action, start).href;
  const done = await fetch(confirm, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      cookie: jar.header(confirm),
    },
    body: new URLSearchParams({ xsrf, logout: 'yes' }).toString(),
    redirect: 'manual',
  });
  jar.store(done);
  await done.arrayBuffer();
  trail.push(`POST ${new URL(confirm).pathname} -> ${done.status}`);
  return trail;
}
