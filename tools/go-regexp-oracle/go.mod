module rollout-guard/tools/go-regexp-oracle

go 1.19
