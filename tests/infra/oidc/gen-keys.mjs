// Run once (node gen-keys.mjs) to regenerate the committed test-only key fixtures.
// provider-jwks.json signs tokens; provider-jwks-rotated.json is the same provider after a
// key rotation (a new RS256 key, the old one retired). client-*.jwk.json are the private
// keys the gateway signs private_key_jwt assertions with; clients.jwks.json their public halves.
import { generateKeyPair, exportJWK } from 'jose';
import { writeFileSync } from 'node:fs';

const priv = async (alg, kid, crv) => {
  const { privateKey } = await generateKeyPair(alg, { extractable: true, crv });
  return { ...(await exportJWK(privateKey)), kid, alg, use: 'sig' };
};
const pub = ({ d, p, q, dp, dq, qi, ...rest }) => rest;
const write = (f, v) => writeFileSync(new URL(f, import.meta.url), `${JSON.stringify(v, null, 1)}\n`);

const rs = await priv('RS256', 'op-rs256');
const es = await priv('ES256', 'op-es256');
const ed = await priv('EdDSA', 'op-eddsa', 'Ed25519');
const rsNext = await priv('RS256', 'op-rs256-next');
write('provider-jwks.json', { keys: [rs, es, ed] });
write('provider-jwks-rotated.json', { keys: [rsNext, es, ed] });

const clients = {};
for (const [alg, crv] of [['RS256'], ['ES256'], ['EdDSA', 'Ed25519']]) {
  const k = await priv(alg, `client-${alg.toLowerCase()}`, crv);
  write(`client-${alg.toLowerCase()}.jwk.json`, k);
  clients[alg] = { keys: [pub(k)] };
}
write('clients.jwks.json', clients);
