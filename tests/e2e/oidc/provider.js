// A real OIDC provider (oidc-provider, certified) on loopback for heph's
// login tests: device flow, offline_access with rotating refresh tokens,
// resource indicators issuing JWT access tokens for the hub audience.
//
// The user's step at the verification page is done by a test-only route,
// POST /test/approve {user_code, sub} (or {user_code, deny: true}); it
// records the approval on the device code exactly as the provider's own
// confirmation page would. GET /test/stats counts token-endpoint grants.
//
// Usage: node provider.js [--port N] [--access-ttl SECONDS]
// Prints "issuer http://127.0.0.1:PORT" on stdout when ready.
import { createServer } from 'node:http';
import Provider from 'oidc-provider';

const args = process.argv.slice(2);
const arg = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const port = Number(arg('--port', '0'));
const accessTtl = Number(arg('--access-ttl', '300'));
export const AUDIENCE = arg('--audience', 'urn:heph:hub');
const CLIENT_ID = arg('--client-id', 'heph-cli');

const stats = { device_code: 0, refresh_token: 0, refresh_failed: 0 };

function start(issuer, server) {
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: CLIENT_ID,
        token_endpoint_auth_method: 'none',
        grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'],
        response_types: [],
        redirect_uris: [],
      },
    ],
    scopes: ['openid', 'offline_access'],
    features: {
      devInteractions: { enabled: false },
      deviceFlow: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => AUDIENCE,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, resource) => {
          if (resource !== AUDIENCE) throw new Error(`unknown resource ${resource}`);
          return { scope: 'sync', audience: AUDIENCE, accessTokenTTL: accessTtl, accessTokenFormat: 'jwt' };
        },
      },
    },
    rotateRefreshToken: true,
    issueRefreshToken: async (_ctx, client, code) => client.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access'),
    ttl: { AccessToken: accessTtl, DeviceCode: 600, RefreshToken: 24 * 3600, Grant: 24 * 3600, IdToken: 3600 },
    findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
    pkce: { required: () => false },
  });
  provider.proxy = false;

  provider.on('grant.success', (ctx) => {
    const type = ctx.oidc.params.grant_type;
    if (type === 'refresh_token') stats.refresh_token += 1;
    if (type?.endsWith('device_code')) stats.device_code += 1;
  });
  provider.on('grant.error', (ctx) => {
    if (ctx.oidc?.params?.grant_type === 'refresh_token') stats.refresh_failed += 1;
  });

  const callback = provider.callback();
  server.on('request', async (req, res) => {
    if (req.url === '/test/stats') {
      res.setHeader('content-type', 'application/json');
      return res.end(JSON.stringify(stats));
    }
    if (req.url === '/test/approve' && req.method === 'POST') {
      let body = '';
      for await (const chunk of req) body += chunk;
      try {
        const { user_code: userCode, sub, deny } = JSON.parse(body);
        const normalized = userCode.toUpperCase().replace(/\W/g, '');
        const code = await provider.DeviceCode.findByUserCode(normalized, { ignoreExpiration: true });
        if (!code) {
          res.statusCode = 404;
          return res.end('no such user code');
        }
        if (deny) {
          Object.assign(code, { error: 'access_denied', errorDescription: 'the user denied the request' });
        } else {
          const grant = new provider.Grant({ accountId: sub, clientId: code.clientId });
          grant.addOIDCScope('openid offline_access');
          grant.addResourceScope(AUDIENCE, 'sync');
          const grantId = await grant.save();
          Object.assign(code, {
            accountId: sub,
            grantId,
            authTime: Math.floor(Date.now() / 1000),
            scope: 'openid offline_access',
            resource: AUDIENCE,
          });
        }
        await code.save();
        res.statusCode = 204;
        return res.end();
      } catch (err) {
        res.statusCode = 500;
        return res.end(String(err));
      }
    }
    return callback(req, res);
  });
}

const server = createServer();
server.listen(port, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  start(issuer, server);
  console.log(`issuer ${issuer}`);
});
process.on('SIGTERM', () => process.exit(0));
