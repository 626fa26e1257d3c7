module strata.bench/goprof

go 1.19
