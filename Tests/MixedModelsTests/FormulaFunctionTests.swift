import Foundation
import Testing
@testable import MixedModels

/// Issue 12: functions in formulas, evaluated as R evaluates them, against tight lme4 fits
/// (fixed effects and SEs 1e-5, variance components 1e-4, objective 1e-6, names equal).
@Suite("Formula functions against lme4")
struct FormulaFunctionTests {
    static let cases = [
        "FactorDays",  // Reaction ~ 1 + factor(Days) + (1 | Subject)
        "LogReaction",  // log(Reaction) ~ 1 + Days + (1 + Days | Subject)
        "LogDays",  // Reaction ~ 1 + log(Days + 1) + (1 | Subject)
        "IDaysSq",  // Reaction ~ 1 + Days + I(Days^2) + (1 + Days | Subject)
        "Poly2",  // Reaction ~ poly(Days, 2) + (1 | Subject)
        "Poly2Raw",  // Reaction ~ poly(Days, 2, raw = TRUE) + (1 | Subject)
        "Scale",  // Reaction ~ scale(Days) + (1 | Subject)
        "ScaleCenter",  // Reaction ~ scale(Days, scale = FALSE) + (1 | Subject)
        "Offset",  // Reaction ~ 1 + Days + offset(Days) + (1 | Subject)
        "MathFuns",  // sqrt, exp, abs, log2, log10, log1p, log(x, base): rank deficient as in lme4
    ]

    @Test("sleepstudy", arguments: cases, ["reml", "ml"])
    func sleepstudy(_ name: String, _ method: String) throws {
        try LanguageReference.check("sleepstudy_\(name)_\(method)_tight", data: "../sleepstudy.csv")
    }

    /// Interactions with functions and functions inside random terms (references made for this
    /// test with ../shared/tools/lme4_reference.R --tight).
    @Test("interactions and random terms", arguments: [
        ("Orthodont_FactorAgeSex_reml_tight", "Orthodont.csv"),  // distance ~ factor(age)*Sex + (1 | Subject)
        ("Orthodont_LogSqrtRandom_ml_tight", "Orthodont.csv"),  // log(distance) ~ sqrt(age) + Sex + (1 + I(age - 11) | Subject)
        ("sleepstudy_LogDaysBySubject_reml_tight", "../sleepstudy.csv"),  // Reaction ~ log(Days + 1):factor(Subject) + (1 | Subject)
    ])
    func interactions(_ name: String, _ data: String) throws {
        try LanguageReference.check(name, data: data)
    }

    @Test("--offset COL is offset(COL)", arguments: ["reml", "ml"])
    func offsetColumn(_ method: String) throws {
        try LanguageReference.check("sleepstudy_Offset_\(method)_tight", data: "../sleepstudy.csv",
                                    formula: "Reaction ~ 1 + Days + (1 | Subject)", options: ModelOptions(offset: "Days"))
    }

    /// lme4 1.1-31 refuses `| factor(Subject)` ("couldn't evaluate grouping factor"); we accept
    /// it as the same model as `| Subject`, which lme4 fits.
    @Test("grouping by factor(Subject) is grouping by Subject", arguments: ["reml", "ml"])
    func factorGrouping(_ method: String) throws {
        try LanguageReference.check("sleepstudy_DaysSlope_\(method)_tight", data: "../sleepstudy.csv",
                                    formula: "Reaction ~ 1 + Days + (1 + Days | factor(Subject))")
    }

    @Test("coefficient names as R prints them")
    func names() throws {
        let formula = try Formula.parse("log(Reaction) ~ factor(Days)*log(Days+1) + I(Days^2 - 1/2) + poly(Days,2) + scale(Days, scale=FALSE) + (1 | Subject)")
        #expect(formula.response == "log(Reaction)")
        let table = try CSVReader.read(path: Fixtures.path("sleepstudy.csv"), for: formula)
        let frame = try ModelFrame(formula: formula, data: table)
        // Functions of Days beside factor(Days) are collinear; dropped columns keep their names.
        let names = frame.fixedEffectNames + frame.droppedFixedEffects
        for name in ["factor(Days)1", "log(Days + 1)", "I(Days^2 - 1/2)", "poly(Days, 2)1", "poly(Days, 2)2",
                     "scale(Days, scale = FALSE)", "factor(Days)9:log(Days + 1)"] {
            #expect(names.contains(name), "\(name) in \(names)")
        }
    }

    /// R's `deparse` of each call, the name of the variable and of its columns.
    @Test("labels are R's deparse", arguments: [
        ("log(Days+1)", "log(Days + 1)"), ("exp(Days/10)", "exp(Days/10)"), ("I(-Days^2)", "I(-Days^2)"),
        ("log(Days,base=2)", "log(Days, base = 2)"), ("poly(Days,2,raw=TRUE)", "poly(Days, 2, raw = TRUE)"),
        ("I((Days - 1)*2.50)", "I((Days - 1) * 2.5)"), ("scale( Days , scale = FALSE )", "scale(Days, scale = FALSE)"),
        ("I(Days*1e-5)", "I(Days * 1e-05)"), ("log(`my var`)", "log(`my var`)"),
    ])
    func labels(_ written: String, _ label: String) throws {
        let formula = try Formula.parse("Reaction ~ \(written) + (1 | Subject)")
        #expect(formula.fixed.terms.map(\.variables) == [[label]])
        #expect(formula.expressions[label] != nil)
    }

    /// R 4.2.2: `attr(poly(sleepstudy$Days, 2), "coefs")`.
    @Test("poly's coefficients are R's, in the transformations report")
    func polyCoefficients() throws {
        let formula = try Formula.parse("Reaction ~ poly(Days, 2) + (1 | Subject)")
        let table = try CSVReader.read(path: Fixtures.path("sleepstudy.csv"), for: formula)
        let frame = try ModelFrame(formula: formula, data: table)
        guard case .object(let members)? = frame.transformations.first(where: {
            if case .object(let m) = $0 { return m.first?.1 == .string("poly(Days, 2)") }
            return false
        }) else {
            Issue.record("no poly record in \(frame.transformations)")
            return
        }
        let record = Dictionary(members, uniquingKeysWith: { a, _ in a })
        guard case .array(let alpha)? = record["alpha"], case .array(let norm2)? = record["norm2"] else {
            Issue.record("no coefficients")
            return
        }
        let expectedAlpha = [4.5, 4.5], expectedNorm2 = [1, 180, 1485, 9504]
        for (value, expected) in zip(alpha, expectedAlpha) {
            guard case .number(let x) = value else { continue }
            #expect(abs(x - expected) <= 1e-12 * max(abs(expected), 1))
        }
        for (value, expected) in zip(norm2, expectedNorm2) {
            guard case .number(let x) = value else { continue }
            #expect(abs(x - Double(expected)) <= 1e-9 * Double(expected))
        }
    }

    @Test("errors point at the problem", arguments: [
        ("Reaction ~ sin(Days) + (1 | Subject)", "unknown function 'sin'; the supported functions are factor", 11..<14),
        ("Reaction ~ log(Days, 2, 3) + (1 | Subject)", "log() takes 1 to 2 arguments, found 3", 11..<26),
        ("Reaction ~ log(Days) + (1 | Subject)", "log() of a non-positive value: Days is 0 in data row 1", 11..<20),
        ("Reaction ~ sqrt(Subject) + (1 | Subject)", "'Subject' is a categorical column; sqrt() needs a numeric one", 16..<23),
        ("Reaction ~ poly(Days) + (1 | Subject)", "poly() takes 2 to 3 arguments, found 1", 11..<21),
        ("Reaction ~ Days + (1 | log(Subject))", "a grouping factor must be a column", 23..<35),
    ])
    func errors(_ formula: String, _ message: String, _ span: Range<Int>) throws {
        do {
            let parsed = try Formula.parse(formula)
            let categorical = formula.contains("sqrt(Subject)") ? ["Subject"] : Set<String>()
            let table = try CSVReader.read(path: Fixtures.path("sleepstudy.csv"), select: ["Reaction", "Days", "Subject"],
                                           categorical: categorical)
            _ = try ModelFrame(formula: parsed, data: table)
            Issue.record("no error for \(formula)")
        } catch let error as FormulaError {
            #expect(error.message.hasPrefix(message), "\(error)")
            #expect(error.span == span, "\(error)")
        }
    }
}
