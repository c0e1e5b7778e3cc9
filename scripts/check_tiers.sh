#!/usr/bin/env bash
# Fails when an #include goes from a lower tier to a higher one (README, "Architecture").
# Tiers: linalg, runtime, data (0) -> layers, kernels (1) -> lipschitz (2) -> models, dp (3) -> certify (4)
#        -> train, deploy (5). A file may include its own tier and lower ones.
set -euo pipefail
cd "$(dirname "$0")/.."
declare -A tier=([linalg]=0 [runtime]=0 [data]=0 [layers]=1 [kernels]=1 [lipschitz]=2 [models]=3 [dp]=3 [certify]=4 [train]=5 [deploy]=5)
bad=0
for dir in include/lipkit src; do
  for t in "${!tier[@]}"; do
    [ -d "$dir/$t" ] || continue
    while IFS= read -r line; do
      file=${line%%:*}
      inc=$(sed -E 's#.*"(lipkit/|kernels/)?([a-z_]+)/.*#\2#' <<<"${line#*:}")
      [[ -n "${tier[$inc]:-}" ]] || continue
      if (( tier[$inc] > tier[$t] )); then
        echo "tier violation: $file ($t, tier ${tier[$t]}) includes $inc (tier ${tier[$inc]}): ${line#*:}"
        bad=1
      fi
    done < <(grep -rHn '#include "' "$dir/$t" | grep -E '"(lipkit/|kernels/)[a-z_]+/' || true)
  done
done
[ $bad -eq 0 ] && echo "tiers: every include goes down or sideways"
exit $bad
