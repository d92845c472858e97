# Reference standard errors for `lmm predict --interval` (issue 15), from lme4 1.1-31.
# Run by hand from Tests/MixedModelsTests (after R/after_the_fit_reference.R, whose new-data
# files it reads):
#   Rscript R/prediction_intervals_reference.R
# Writes Fixtures/prediction_intervals.json.
#
# Everything is conditional on lme4's θ and σ (the fits of after_the_fit_reference.R):
# - conditional: v = (z, x) with z the new row of Z for the levels the fit saw (lme4's own
#   mkNewReTrms, which gives an unseen level a zero column), C = Cov(b̂ − b, β̂ − β) =
#   D σ² A⁻¹ D', A = [Λ'Z'ZΛ + I, Λ'Z'X; X'ZΛ, X'X], D = diag(Λ, I); se² = v'Cv plus, for each
#   term whose level is unseen, z_j'Σ_j z_j (Σ_j = VarCorr's matrix of the term);
# - population level: se² = x' vcov(m) x + Σ_j z_j'Σ_j z_j;
# - prediction intervals add σ².
suppressPackageStartupMessages({ library(lme4); library(jsonlite); library(Matrix) })
fx <- function(name) file.path("Fixtures", name)

sleep <- read.csv(fx("sleepstudy.csv"), colClasses = c(Subject = "factor"))
pen <- read.csv(fx("Penicillin.csv"), stringsAsFactors = TRUE)
mach <- read.csv(fx("Machines.csv"), colClasses = c(Worker = "factor", Machine = "factor"))
sleep_new <- read.csv(fx("sleepstudy_newdata.csv"), colClasses = c(Subject = "character"))
pen_new <- read.csv(fx("Penicillin_newdata.csv"), colClasses = "character")
mach_new <- read.csv(fx("Machines_newdata.csv"), colClasses = "character")

tight <- lmerControl(optimizer = "nloptwrap", optCtrl = list(xtol_abs = 1e-12, ftol_abs = 1e-14, xtol_rel = 1e-12, ftol_rel = 1e-15, maxeval = 1e5))

joint_covariance <- function(m) {
  X <- getME(m, "X"); Z <- getME(m, "Z"); L <- t(getME(m, "Lambdat"))
  ZL <- Z %*% L
  q <- ncol(Z)
  A <- rbind(cbind(crossprod(ZL) + Diagonal(q), crossprod(ZL, X)),
             cbind(crossprod(X, ZL), crossprod(X)))
  D <- bdiag(L, Diagonal(ncol(X)))
  as.matrix(D %*% (sigma(m)^2 * solve(A)) %*% t(D))
}

# terms: for each random term (in lme4's order), the grouping column(s) and a function giving
# the term's model row for a new-data row.
intervals <- function(m, newdata, fixed_rhs, terms) {
  C <- joint_covariance(m)
  V <- as.matrix(vcov(m))
  # Checks of C: its β block is vcov(m); its b diagonal exceeds lme4's condVar by the part
  # due to estimating β.
  p <- ncol(V); nq <- nrow(C) - p
  stopifnot(isTRUE(all.equal(unname(C[nq + seq_len(p), nq + seq_len(p), drop = FALSE]), unname(V), tolerance = 1e-8)))
  condvar <- unlist(lapply(ranef(m, condVar = TRUE), function(r) {
    pv <- attr(r, "postVar"); as.vector(sapply(seq_len(dim(pv)[3]), function(l) diag(as.matrix(pv[, , l]))))
  }))
  stopifnot(all(diag(C)[seq_len(nq)] >= condvar - 1e-12))
  s2 <- sigma(m)^2
  vc <- VarCorr(m)
  flist <- getME(m, "flist")
  complete <- complete.cases(newdata)
  nd <- newdata
  nd[!complete, ] <- newdata[which(complete)[1], ]   # placeholders, reported as NA
  factors <- Filter(is.factor, m@frame)
  X <- model.matrix(fixed_rhs, model.frame(fixed_rhs, nd, xlev = lapply(factors, levels)[intersect(names(factors), all.vars(fixed_rhs))]))
  # Z's columns: term by term (getME(m, "Gp")), level by level, effect by effect.
  Gp <- getME(m, "Gp")
  q <- ncol(getME(m, "Z"))
  out <- list(cond_conf = c(), cond_pred = c(), pop_conf = c(), pop_pred = c())
  for (i in seq_len(nrow(nd))) {
    z_all <- numeric(q)
    for (j in seq_along(terms)) {
      t <- terms[[j]]
      label <- paste(sapply(t$grouping, function(g) as.character(nd[i, g])), collapse = ":")
      l <- match(label, levels(flist[[t$name]]))
      z <- t$row(nd[i, ])
      if (!is.na(l)) z_all[Gp[j] + (l - 1) * length(z) + seq_along(z)] <- z
    }
    v <- c(z_all, X[i, ])
    conditional <- drop(t(v) %*% C %*% v)
    population <- drop(t(X[i, ]) %*% V %*% X[i, ])
    for (t in terms) {
      z <- t$row(nd[i, ])
      prior <- drop(t(z) %*% vc[[t$name]] %*% z)
      label <- paste(sapply(t$grouping, function(g) as.character(nd[i, g])), collapse = ":")
      if (!(label %in% levels(flist[[t$name]]))) conditional <- conditional + prior
      population <- population + prior
    }
    na <- if (complete[i]) 1 else NA
    out$cond_conf[i] <- na * sqrt(conditional)
    out$cond_pred[i] <- na * sqrt(conditional + s2)
    out$pop_conf[i] <- na * sqrt(population)
    out$pop_pred[i] <- na * sqrt(population + s2)
  }
  out
}

m_sleep <- lmer(Reaction ~ 1 + Days + (1 + Days | Subject), sleep, control = tight)
m_pen <- lmer(diameter ~ 1 + (1 | plate) + (1 | sample), pen, control = tight)
m_mach <- lmer(score ~ 1 + Machine + (1 | Worker), mach, control = tight)

one <- function(r) 1
entry <- function(m, newdata, formula, data, fixed_rhs, terms) {
  se <- intervals(m, newdata, fixed_rhs, terms)
  fit <- unname(predict(m, newdata, allow.new.levels = TRUE))
  z <- qnorm(0.975)
  c(list(formula = formula, data = data, newdata = sub("Fixtures/", "", newdata_file[[data]]),
         varcorr = as.data.frame(VarCorr(m)), level = 0.95, conditional = fit,
         lower = fit - z * se$cond_conf, upper = fit + z * se$cond_conf), se)
}
newdata_file <- list("sleepstudy.csv" = "sleepstudy_newdata.csv", "Penicillin.csv" = "Penicillin_newdata.csv",
                     "Machines.csv" = "Machines_newdata.csv")
out <- list(
  sleepstudy = entry(m_sleep, sleep_new, "Reaction ~ 1 + Days + (1 + Days | Subject)", "sleepstudy.csv", ~ 1 + Days,
                     list(list(name = "Subject", grouping = "Subject", row = function(r) c(1, r$Days)))),
  penicillin = entry(m_pen, pen_new, "diameter ~ 1 + (1 | plate) + (1 | sample)", "Penicillin.csv", ~ 1,
                     list(list(name = "plate", grouping = "plate", row = one),
                          list(name = "sample", grouping = "sample", row = one))),
  machines = entry(m_mach, mach_new, "score ~ 1 + Machine + (1 | Worker)", "Machines.csv", ~ 1 + Machine,
                   list(list(name = "Worker", grouping = "Worker", row = one))))
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, na = "null", pretty = TRUE), fx("prediction_intervals.json"))
str(out$sleepstudy[c("cond_conf", "pop_conf")])
