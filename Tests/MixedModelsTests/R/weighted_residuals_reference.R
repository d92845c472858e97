# Reference fitted values and residuals of a fit with prior weights and an offset, for
# `lmm fit --weights … --residuals` (issue 15), from lme4 1.1-31. Run by hand from
# Tests/MixedModelsTests:
#   Rscript R/weighted_residuals_reference.R
# Writes Fixtures/sleepstudy_weighted.csv (sleepstudy with a weight column w = 1, 2, 3, …
# and an offset column o = 0, 0.5, …, 2) and Fixtures/weighted_residuals.json.
suppressPackageStartupMessages({ library(lme4); library(jsonlite) })
fx <- function(name) file.path("Fixtures", name)
d <- read.csv(fx("sleepstudy.csv"), colClasses = c(Subject = "factor"))
i <- seq_len(nrow(d)) - 1
d$w <- 1 + i %% 3
d$o <- (i %% 5) * 0.5
write.csv(d, fx("sleepstudy_weighted.csv"), row.names = FALSE)
tight <- lmerControl(optimizer = "nloptwrap", optCtrl = list(xtol_abs = 1e-12, ftol_abs = 1e-14, xtol_rel = 1e-12, ftol_rel = 1e-15, maxeval = 1e5))
m <- lmer(Reaction ~ 1 + Days + offset(o) + (1 | Subject), d, weights = w, control = tight)
out <- list(formula = "Reaction ~ 1 + Days + offset(o) + (1 | Subject)", data = "sleepstudy_weighted.csv", weights = "w",
            varcorr = as.data.frame(VarCorr(m)),
            fitted = unname(fitted(m)), marginal = unname(predict(m, re.form = NA)),
            residual = unname(residuals(m)), scaled = unname(residuals(m, scaled = TRUE)))
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), fx("weighted_residuals.json"))
