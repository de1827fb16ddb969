// A real OpenID Connect provider for the single sign-on tests, on loopback only.
// Configured by environment: OIDC_PORT, OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OIDC_REDIRECT_URI,
// OIDC_ACCOUNTS (JSON: login id -> extra claims). Any login id signs in with any password through
// the provider's own development login page; its claims are the id (sub) plus OIDC_ACCOUNTS[id].
import Provider from 'oidc-provider';

const port = Number(process.env.OIDC_PORT || 9150);
const issuer = `http://127.0.0.1:${port}`;
const accounts = JSON.parse(process.env.OIDC_ACCOUNTS || '{}');

const oidc = new Provider(issuer, {
  clients: [{
    client_id: process.env.OIDC_CLIENT_ID,
    client_secret: process.env.OIDC_CLIENT_SECRET,
    redirect_uris: [process.env.OIDC_REDIRECT_URI],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  claims: { openid: ['sub'], profile: ['preferred_username', 'name'], email: ['email'] },
  async findAccount(ctx, id) {
    return { accountId: id, async claims() { return { sub: id, preferred_username: id, ...(accounts[id] || {}) }; } };
  },
  cookies: { keys: ['grants-test-cookie-key-not-secret'] },
  features: { devInteractions: { enabled: true } },
});
oidc.listen(port, '127.0.0.1', () => { console.log(`oidc-provider listening on ${issuer}`); });
