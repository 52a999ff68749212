#!/usr/bin/env bash
set -euo pipefail

export AWS_ACCESS_KEY_ID=AKIAXWD22TIZXEXAMPLE
export AWS_SECRET_ACCESS_KEY="E0ICIdBBX7pQ/am4BALviEXAMPLEKEYXdjuZTyTZ"
export PGPASSWORD='9g7770GQdYYv7TGb'
GITLAB_TOKEN=glpat-swSp1QSgshHVLTPB7pPQ

cat > ~/.ssh/deploy_key <<'KEY'
-----BEGIN OPENSSH PRIVATE KEY-----
2e7O3fhNyI3CxQG0kzSVqo2NAicmDGs/KYoyGlIMCRveDxLkwYyzpuTOvP93Yz2B
nGPfzYya4F+oeUCto6sX81mKpqWG/E7QwFFuOT+CIINotj7fPdVrOv8sRZVDuGY7
DUppTUq4v7eE5rpRet5YhznWDQH0zi9Qq7iHe3sMEfZk9X+k2VTArqGYsDv2vlfo
cX+a73Cx/6b29DQZkGB3CU2vMHzVlsJg+c1IP7vrQOGpcYGm2qsKtlGjXUSgu25W
iVUC9lb3PQ9PLgncapZySMDcBWc3gCF7NzvSaHIHy5XWQ4ckzTcd5Kuq8LpLATHR
lR0Jvkp+lG0OJKG4GeIv==
-----END OPENSSH PRIVATE KEY-----
KEY
chmod 600 ~/.ssh/deploy_key
curl --header "PRIVATE-TOKEN: $GITLAB_TOKEN" https://gitlab.example.com/api/v4/projects
