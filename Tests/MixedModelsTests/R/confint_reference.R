# References for ConfidenceIntervalTests (run by hand from the repository root):
#   Rscript Tests/MixedModelsTests/R/confint_reference.R
# Writes Tests/MixedModelsTests/Fixtures/confint_<name>.json: lme4's confint(m) with
# method = "profile" and "Wald", and a parametric bootstrap (bootMer, nsim = 500, percentile
# intervals) with the standard deviation of each parameter's replicates, for the Monte Carlo
# error of a percentile. lme4 1.1-31, REML fits with tight optimizer tolerances (the optimum
# itself, which lmm reaches; lme4's defaults stop short).
suppressMessages({ library(lme4); library(jsonlite) })
fixtures <- "Tests/MixedModelsTests/Fixtures"
models <- list(
  sleepstudy = list(file = "sleepstudy.csv", formula = Reaction ~ 1 + Days + (1 + Days | Subject)),
  dyestuff = list(file = "Dyestuff.csv", formula = Yield ~ 1 + (1 | Batch)),
  # Profile and Wald only (no bootstrap): crossed factors, and a boundary fit (σ_Batch = 0).
  penicillin = list(file = "Penicillin.csv", formula = diameter ~ 1 + (1 | plate) + (1 | sample), boot = FALSE),
  dyestuff2 = list(file = "Dyestuff2.csv", formula = Yield ~ 1 + (1 | Batch), boot = FALSE)
)
table <- function(ci) list(names = rownames(ci), lower = unname(ci[, 1]), upper = unname(ci[, 2]))
for (name in names(models)) {
  spec <- models[[name]]
  data <- read.csv(file.path(fixtures, spec$file))
  for (column in names(data)) if (is.character(data[[column]])) data[[column]] <- factor(data[[column]])
  m <- lmer(spec$formula, data = data, control = lmerControl(optimizer = "nloptwrap", optCtrl = list(xtol_abs = 1e-12, ftol_abs = 1e-14, xtol_rel = 1e-12, ftol_rel = 1e-15, maxeval = 1e5)))
  profile <- confint(m, method = "profile", oldNames = TRUE)
  wald <- confint(m, method = "Wald", oldNames = TRUE)
  out <- list(
    formula = deparse(spec$formula), data = spec$file, lme4 = as.character(packageVersion("lme4")),
    profile = table(profile), wald = c(table(wald))
  )
  if (isFALSE(spec$boot)) {
    writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, na = "null", pretty = TRUE),
               file.path(fixtures, paste0("confint_", name, ".json")))
    next
  }
  set.seed(20261130)
  boot <- bootMer(m, function(x) {
    c(setNames(lme4:::Cv_to_Sv(x@theta, n = lengths(x@cnms), s = sigma(x)), rownames(profile)[seq_len(length(x@theta) + 1)]), fixef(x))
  }, nsim = 500)
  perc <- confint(boot, type = "perc", level = 0.95)
  out <- list(
    formula = deparse(spec$formula), data = spec$file, lme4 = as.character(packageVersion("lme4")),
    profile = table(profile), wald = c(table(wald)),
    boot = c(table(perc), list(nsim = 500, sd = unname(apply(boot$t, 2, sd, na.rm = TRUE))))
  )
  out$wald$lower[is.na(out$wald$lower)] <- NA
  writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, na = "null", pretty = TRUE),
             file.path(fixtures, paste0("confint_", name, ".json")))
}
