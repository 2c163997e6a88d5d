// A real OAuth 2.1 authorization server for the interop suite: oidc-provider (a
// certified OpenID provider) on loopback, with the client-credentials grant and
// resource indicators (RFC 8707), issuing RS256 JWT access tokens whose `aud` is the
// requested resource. Usage: node idp.mjs PORT KID KEYFILE. It signs with a fresh RSA
// key named KID and writes that key (private, a throwaway test key) to KEYFILE so the
// tests can forge an expired token the provider would have signed. Restarting it with
// another KID on the same port is a key rotation at the provider.
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import Provider from 'oidc-provider';

const [port, kid, keyFile] = process.argv.slice(2);
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };
writeFileSync(keyFile, JSON.stringify(jwk));

const issuer = `http://127.0.0.1:${port}`;
const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'ci-bot',
      client_secret: 'interop-client-secret-0123456789',
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
    },
  ],
  jwks: { keys: [jwk] },
  scopes: ['fly:read', 'fly:write', 'fly:destroy', 'other'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => undefined,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, resource) => ({
        scope: 'fly:read fly:write fly:destroy other',
        audience: resource,
        accessTokenFormat: 'jwt',
        accessTokenTTL: 300,
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
});
provider.listen(Number(port), '127.0.0.1', () => {
  console.log(`idp listening at ${issuer}`);
});
