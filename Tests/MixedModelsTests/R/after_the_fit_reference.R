# Reference values for `lmm predict`, `lmm fit --residuals` and `lmm anova` (issue 15),
# from lme4 1.1-31. Run by hand from Tests/MixedModelsTests:
#   Rscript R/after_the_fit_reference.R
# Writes Fixtures/after_the_fit.json and the new-data CSV files it predicts on.
suppressPackageStartupMessages({ library(lme4); library(jsonlite) })
fx <- function(name) file.path("Fixtures", name)

sleep <- read.csv(fx("sleepstudy.csv"), colClasses = c(Subject = "factor"))
pen <- read.csv(fx("Penicillin.csv"), stringsAsFactors = TRUE)
mach <- read.csv(fx("Machines.csv"), colClasses = c(Worker = "factor", Machine = "factor"))

# New data: seen and unseen levels, a missing covariate, Days outside the observed range.
sleep_new <- data.frame(Days = c(0, 3.5, 9, 12, NA, 2, 5),
                        Subject = c("308", "309", "372", "999", "330", "1000", "308"))
write.csv(sleep_new, fx("sleepstudy_newdata.csv"), row.names = FALSE)
pen_new <- data.frame(plate = c("a", "x", "zz", "m", "zz", "b"),
                      sample = c("A", "F", "C", "Q", "Q", "D"))
write.csv(pen_new, fx("Penicillin_newdata.csv"), row.names = FALSE)
mach_new <- data.frame(Machine = c("A", "B", "C", "C", "B"), Worker = c("1", "6", "3", "9", "2"))
write.csv(mach_new, fx("Machines_newdata.csv"), row.names = FALSE)

# Residuals with dropped rows: sleepstudy with missing values in rows 5, 17 and 100.
sleep_na <- sleep
sleep_na$Reaction[5] <- NA
sleep_na$Days[17] <- NA
sleep_na$Subject[100] <- NA
write.csv(sleep_na, fx("sleepstudy_na.csv"), row.names = FALSE, na = "")

# Tight optimizer tolerances: the optimum itself, which lmm reaches (lme4's defaults stop short).
tight <- lmerControl(optimizer = "nloptwrap", optCtrl = list(xtol_abs = 1e-12, ftol_abs = 1e-14, xtol_rel = 1e-12, ftol_rel = 1e-15, maxeval = 1e5))

nd <- function(d) { d$Subject <- factor(d$Subject); d }
# varcorr: lme4's variance components, so that the test can evaluate the predictions at
# exactly lme4's estimates (lmm fit --variances) as well as at its own optimum.
predictions <- function(m, newdata) list(
  varcorr = as.data.frame(VarCorr(m)),
  conditional = unname(predict(m, newdata, allow.new.levels = TRUE)),
  population = unname(predict(m, newdata, re.form = NA)))

m_sleep <- lmer(Reaction ~ 1 + Days + (1 + Days | Subject), sleep, control = tight)
m_pen <- lmer(diameter ~ 1 + (1 | plate) + (1 | sample), pen, control = tight)
m_mach <- lmer(score ~ 1 + Machine + (1 | Worker), mach, control = tight)
m_na <- lmer(Reaction ~ 1 + Days + (1 + Days | Subject), sleep_na, control = tight)

anova_table <- function(a) {
  list(models = rownames(a), npar = a$npar, AIC = a$AIC, BIC = a$BIC, logLik = a$logLik,
       deviance = a$deviance, Chisq = a$Chisq, Df = a$Df, p = a[["Pr(>Chisq)"]])
}
a_sleep <- anova(lmer(Reaction ~ 1 + Days + (1 | Subject), sleep, control = tight), m_sleep)
a_pen <- anova(lmer(diameter ~ 1 + (1 | plate), pen, control = tight), m_pen)

out <- list(
  predict = list(
    sleepstudy = c(list(formula = "Reaction ~ 1 + Days + (1 + Days | Subject)", data = "sleepstudy.csv",
                        newdata = "sleepstudy_newdata.csv"), predictions(m_sleep, sleep_new)),
    penicillin = c(list(formula = "diameter ~ 1 + (1 | plate) + (1 | sample)", data = "Penicillin.csv",
                        newdata = "Penicillin_newdata.csv"), predictions(m_pen, pen_new)),
    machines = c(list(formula = "score ~ 1 + Machine + (1 | Worker)", data = "Machines.csv",
                      newdata = "Machines_newdata.csv"), predictions(m_mach, mach_new))),
  residuals = list(formula = "Reaction ~ 1 + Days + (1 + Days | Subject)", data = "sleepstudy_na.csv",
                   varcorr = as.data.frame(VarCorr(m_na)),
                   row = as.integer(names(residuals(m_na))),
                   fitted = unname(fitted(m_na)),
                   marginal = unname(predict(m_na, re.form = NA)),
                   residual = unname(residuals(m_na)),
                   pearson = unname(residuals(m_na, scaled = TRUE))),  # residual / sigma (type = "pearson" is the raw residual for an unweighted LMM)
  anova = list(
    sleepstudy = c(list(data = "sleepstudy.csv", formulas = c("Reaction ~ 1 + Days + (1 | Subject)",
                        "Reaction ~ 1 + Days + (1 + Days | Subject)")), anova_table(a_sleep)),
    penicillin = c(list(data = "Penicillin.csv", formulas = c("diameter ~ 1 + (1 | plate)",
                        "diameter ~ 1 + (1 | plate) + (1 | sample)")), anova_table(a_pen))))
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, na = "null", pretty = TRUE), fx("after_the_fit.json"))
print(a_sleep); print(a_pen)

# Formula functions, contrasts and offsets in saved models (lmm fit --save, lmm predict):
# predict() evaluates poly() and scale() on new data with the training data's coefficients
# (makepredictcall), so the new rows are not re-centred or re-orthogonalised.
# Writes Fixtures/predict_transformed.json and the new-data files it predicts on.
sleepw <- read.csv(fx("sleepstudy_weighted.csv"), colClasses = c(Subject = "factor"))
sleep_tnew <- data.frame(Days = c(0, 3.5, 9, 12, NA, 2, 5, 7.25),
                         Subject = c("308", "309", "372", "999", "330", "1000", "308", "350"),
                         o = c(0, 1, 2.5, -1, 0.5, 0, 1.5, 0.25))
write.csv(sleep_tnew, fx("sleepstudy_newdata_transformed.csv"), row.names = FALSE)
sleep_dnew <- data.frame(Days = c(0, 3, 9, NA, 2, 5),
                         Subject = c("308", "309", "999", "330", "1000", "372"))
write.csv(sleep_dnew, fx("sleepstudy_newdata_days.csv"), row.names = FALSE)
m_poly <- lmer(Reaction ~ 1 + poly(Days, 2) + (1 + Days | Subject), sleep, control = tight)
m_scale <- lmer(Reaction ~ 1 + scale(Days) + I(Days^2) + (1 | Subject), sleep, control = tight)
m_log <- lmer(Reaction ~ 1 + log(Days + 1) + (1 + log(Days + 1) | Subject), sleep, control = tight)
m_factor <- lmer(Reaction ~ 1 + factor(Days) + (1 | Subject), sleep, control = tight)
m_offterm <- lmer(Reaction ~ 1 + Days + offset(o) + (1 | Subject), sleepw, control = tight)
m_offcol <- lmer(Reaction ~ 1 + Days + (1 + Days | Subject), sleepw, offset = o, control = tight)
m_sum <- lmer(score ~ 1 + Machine + (1 | Worker), mach, contrasts = list(Machine = contr.sum), control = tight)
m_helmert <- lmer(score ~ 1 + Machine + (1 | Worker), mach, contrasts = list(Machine = contr.helmert), control = tight)
m_logpen <- lmer(log(diameter) ~ 1 + (1 | plate) + (1 | sample), pen, control = tight)

# lme4 1.1-31's predict(m, newdata) adds the formula's offset() terms but ignores lmer's
# `offset =` argument (it evaluates only the terms' offsets on newdata); lmm predict adds the
# offset column too, so for that model the test expects lme4's values plus `added_offset`.
p <- function(formula, data, newdata, m, nd, contrasts = "treatment", offset = NA_character_)
  c(list(formula = formula, data = data, newdata = newdata, contrasts = contrasts, offset = offset,
         added_offset = if (is.na(offset)) NA else nd[[offset]]), predictions(m, nd))
transformed <- list(
  poly = p("Reaction ~ 1 + poly(Days, 2) + (1 + Days | Subject)", "sleepstudy.csv",
           "sleepstudy_newdata_transformed.csv", m_poly, nd(sleep_tnew)),
  scale = p("Reaction ~ 1 + scale(Days) + I(Days^2) + (1 | Subject)", "sleepstudy.csv",
            "sleepstudy_newdata_transformed.csv", m_scale, nd(sleep_tnew)),
  log = p("Reaction ~ 1 + log(Days + 1) + (1 + log(Days + 1) | Subject)", "sleepstudy.csv",
          "sleepstudy_newdata_transformed.csv", m_log, nd(sleep_tnew)),
  factor = p("Reaction ~ 1 + factor(Days) + (1 | Subject)", "sleepstudy.csv",
             "sleepstudy_newdata_days.csv", m_factor, nd(sleep_dnew)),
  offset_term = p("Reaction ~ 1 + Days + offset(o) + (1 | Subject)", "sleepstudy_weighted.csv",
                  "sleepstudy_newdata_transformed.csv", m_offterm, nd(sleep_tnew)),
  offset_column = p("Reaction ~ 1 + Days + (1 + Days | Subject)", "sleepstudy_weighted.csv",
                    "sleepstudy_newdata_transformed.csv", m_offcol, nd(sleep_tnew), offset = "o"),
  machines_sum = p("score ~ 1 + Machine + (1 | Worker)", "Machines.csv", "Machines_newdata.csv",
                   m_sum, mach_new, contrasts = "sum"),
  machines_helmert = p("score ~ 1 + Machine + (1 | Worker)", "Machines.csv", "Machines_newdata.csv",
                       m_helmert, mach_new, contrasts = "helmert"),
  penicillin_log = p("log(diameter) ~ 1 + (1 | plate) + (1 | sample)", "Penicillin.csv",
                     "Penicillin_newdata.csv", m_logpen, pen_new))
writeLines(toJSON(transformed, digits = NA, auto_unbox = TRUE, na = "null", pretty = TRUE), fx("predict_transformed.json"))
