#!/usr/bin/env bash
# Makes the development certificates in this folder: a CA, a server
# certificate for localhost and 127.0.0.1 signed by it, and a P-256 JWT
# signing key. For development only: the private keys are public.
#
#   certs/make-dev-certs.sh          # writes ca.pem, ca-key.pem, localhost.pem,
#                                    # localhost-key.pem, jwt-signing.pem
set -euo pipefail
cd "$(dirname "$0")"

days=3650
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout ca-key.pem -out ca.pem -days "$days" \
  -subj "/O=Kisee development/CN=Kisee development CA" \
  -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null

openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout localhost-key.pem -out "$tmp/localhost.csr" \
  -subj "/O=Kisee development/CN=localhost" 2>/dev/null

cat > "$tmp/leaf.ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1
EXT
openssl x509 -req -in "$tmp/localhost.csr" -CA ca.pem -CAkey ca-key.pem \
  -CAcreateserial -CAserial "$tmp/ca.srl" -days "$days" \
  -extfile "$tmp/leaf.ext" -out localhost.pem 2>/dev/null

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out jwt-signing.pem
chmod 600 ca-key.pem localhost-key.pem jwt-signing.pem
openssl verify -CAfile ca.pem localhost.pem
