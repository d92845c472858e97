#!/usr/bin/env python3
"""Re-runs the reliability catalogue of issue 11 against an `lmm` binary, as a user would.

    Tests/Catalogue/run-catalogue.py .build/release/lmm [--jobs 2] [--timeout 120] [--only WORD] [--heavy] [--verbose]

Every case runs `lmm` in a scratch directory with its own TMPDIR and is classified as
  clean-error  exit 1 with an `lmm: error:` message (not "internal error"), inputs intact
  correct      exit 0 (or the expected signal) and the result checked (numbers, files, devices)
  crash        ended by a signal it was not sent, or exit >= 128
  hang         still running at the timeout (then killed)
  wrong        exit 0 where an error was due, numbers off, an "internal error" message, or a
               valid input refused
  data-loss    an input changed, a temporary file left behind, a device/FIFO/symlink replaced
and the counts are printed per class (and per issue item); the exit status is non-zero when any
case is a crash, a hang, wrong or data loss.
Needs python3 only (and `datagen` next to `lmm` for the SIGINT and memory cases).
"""
import argparse, concurrent.futures, hashlib, json, os, random, shutil, signal, stat, struct, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
SLEEPSTUDY = os.path.join(HERE, "..", "..", "examples", "sleepstudy.csv")
F = "Reaction ~ 1 + Days + (1 + Days | Subject)"
# lme4 1.1-31, sleepstudy REML: variance components (Subject (Intercept), Days, covariance, Residual), fixed effects.
LME4_VC = [612.10, 35.07, 9.60, 654.94]
LME4_FIXEF = [251.405, 10.467]


class Case:
    def __init__(self, item, name, argv, expect="error", setup=None, check=None, signal_after=None,
                 limit_mb=None, stdin=None, inputs=(), timeout=None, expect_in_message=None):
        self.item, self.name, self.argv, self.expect = item, name, argv, expect
        self.setup, self.check, self.signal_after, self.limit_mb = setup, check, signal_after, limit_mb
        self.inputs, self.timeout, self.expect_in_message = list(inputs), timeout, expect_in_message


def sha(path):
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return None


def read_csv_lines():
    with open(SLEEPSTUDY) as f:
        return f.read().splitlines()


def write(path, text, mode="w"):
    with open(path, mode) as f:
        f.write(text)


def replace_field(row, col, value):
    lines = read_csv_lines()
    fields = lines[row].split(",")
    fields[col] = value
    lines[row] = ",".join(fields)
    return "\n".join(lines) + "\n"


def transform_column(col, fn):
    lines = read_csv_lines()
    out = [lines[0]]
    for line in lines[1:]:
        fields = line.split(",")
        fields[col] = repr(fn(float(fields[col])))
        out.append(",".join(fields))
    return "\n".join(out) + "\n"


def json_numbers(path):
    with open(path) as f:
        doc = json.load(f)
    vc = [e["vcov"] for e in doc["varcorr"]]
    return doc, vc


def close(a, b, rel):
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-300)


# ----------------------------------------------------------------------------------------- cases

def catalogue(lmm, heavy):
    cases = []
    add = cases.append
    datagen = os.path.join(os.path.dirname(lmm), "datagen")

    def data(text, name="d.csv", binary=False):
        def setup(d):
            write(os.path.join(d, name), text, "wb" if binary else "w")
        return setup

    def copy_sleep(name="in.csv"):
        return lambda d: shutil.copy(SLEEPSTUDY, os.path.join(d, name))

    def fits_like_lme4(rel=1e-3):
        def check(d, out, err):
            doc, vc = json_numbers(os.path.join(d, "out.json"))
            ok = all(close(a, b, rel) for a, b in zip(vc, LME4_VC)) and all(
                close(a, b, rel) for a, b in zip(doc["fixef"].values() if isinstance(doc["fixef"], dict) else doc["fixef"], LME4_FIXEF))
            return ok, "variance components %s" % vc
        return check

    # Item 1: output targets.
    def dev_null_check(d, out, err):
        return stat.S_ISCHR(os.stat("/dev/null").st_mode), "/dev/null is %o" % os.stat("/dev/null").st_mode
    add(Case("1", "--json /dev/null", ["fit", "{in}", "-f", F, "--json", "/dev/null", "-q"], "ok", copy_sleep(), dev_null_check))
    add(Case("1", "--json /dev/null --ranef /dev/null", ["fit", "{in}", "-f", F, "--json", "/dev/null", "--ranef", "/dev/null", "-q"],
             "ok", copy_sleep(), dev_null_check))
    add(Case("1", "--json - (stdout)", ["fit", "{in}", "-f", F, "--json", "-", "-q"], "ok", copy_sleep(),
             lambda d, out, err: ('"fixef"' in out, "stdout has the JSON")))
    add(Case("1", "--json /dev/stdout in a pipe", ["fit", "{in}", "-f", F, "--json", "/dev/stdout", "-q"], "ok", copy_sleep(),
             lambda d, out, err: ('"fixef"' in out, "stdout has the JSON")))

    def symlink_setup(d):
        shutil.copy(SLEEPSTUDY, os.path.join(d, "in.csv"))
        os.makedirs(os.path.join(d, "real"))
        write(os.path.join(d, "real", "target.json"), "old")
        os.symlink(os.path.join(d, "real", "target.json"), os.path.join(d, "out.json"))
    add(Case("1", "--json through a symlink", ["fit", "{in}", "-f", F, "--json", "{d}/out.json", "-q"], "ok", symlink_setup,
             lambda d, out, err: (os.path.islink(os.path.join(d, "out.json")) and '"fixef"' in open(os.path.join(d, "real", "target.json")).read(),
                                  "link kept, target written")))

    def mode_setup(d):
        shutil.copy(SLEEPSTUDY, os.path.join(d, "in.csv"))
        write(os.path.join(d, "out.json"), "old")
        os.chmod(os.path.join(d, "out.json"), 0o640)
    add(Case("1", "existing output keeps its mode", ["fit", "{in}", "-f", F, "--json", "{d}/out.json", "-q"], "ok", mode_setup,
             lambda d, out, err: (stat.S_IMODE(os.stat(os.path.join(d, "out.json")).st_mode) == 0o640, "mode kept")))

    def fifo_setup(d):
        shutil.copy(SLEEPSTUDY, os.path.join(d, "in.csv"))
        os.mkfifo(os.path.join(d, "pipe"))
        # A reader that drains the FIFO in the background.
        subprocess.Popen(["sh", "-c", "cat '%s' > '%s'" % (os.path.join(d, "pipe"), os.path.join(d, "received"))])
    add(Case("1", "--json a FIFO", ["fit", "{in}", "-f", F, "--json", "{d}/pipe", "-q"], "ok", fifo_setup,
             lambda d, out, err: (stat.S_ISFIFO(os.lstat(os.path.join(d, "pipe")).st_mode)
                                  and (time.sleep(0.5) or '"fixef"' in open(os.path.join(d, "received")).read()), "FIFO kept and read")))

    # Item 2: an output naming an input or another output.
    for option in ["--json", "--ranef", "--residuals", "--save"]:
        add(Case("2", "%s names the data file" % option, ["fit", "{in}", "-f", F, option, "{in}", "-q"], "error", copy_sleep(), inputs=["in.csv"]))
    add(Case("2", "--json X --ranef X", ["fit", "{in}", "-f", F, "--json", "{d}/x", "--ranef", "{d}/x", "-q"], "error", copy_sleep(), inputs=["in.csv"]))

    def hardlink_setup(d):
        shutil.copy(SLEEPSTUDY, os.path.join(d, "in.csv"))
        os.link(os.path.join(d, "in.csv"), os.path.join(d, "alias.csv"))
    add(Case("2", "--json a hard link to the data", ["fit", "{in}", "-f", F, "--json", "{d}/alias.csv", "-q"], "error", hardlink_setup, inputs=["in.csv"]))

    def binary_setup(d):
        shutil.copy(SLEEPSTUDY, os.path.join(d, "in.csv"))
        subprocess.run([lmm, "convert", os.path.join(d, "in.csv"), os.path.join(d, "in.lmmbin"), "--categorical", "Subject"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    add(Case("2", "adam on .lmmbin, --json the .lmmbin", ["fit", "{d}/in.lmmbin", "-f", F, "--method", "adam", "--json", "{d}/in.lmmbin", "-q"],
             "error", binary_setup, inputs=["in.lmmbin"]))
    add(Case("2", "convert a a", ["convert", "{in}", "{in}"], "error", copy_sleep(), inputs=["in.csv"]))
    add(Case("2", "--variances names the --json output", ["fit", "{in}", "-f", F, "--variances", "{d}/v.json", "--json", "{d}/v.json", "-q"], "error",
             lambda d: (copy_sleep()(d), write(os.path.join(d, "v.json"), json.dumps({"varcorr": [
                 {"grp": "Subject", "var1": "(Intercept)", "var2": None, "vcov": 612.1},
                 {"grp": "Subject", "var1": "Days", "var2": None, "vcov": 35.07},
                 {"grp": "Subject", "var1": "(Intercept)", "var2": "Days", "vcov": 9.6},
                 {"grp": "Residual", "var1": None, "var2": None, "vcov": 654.9}]}))), inputs=["in.csv", "v.json"]))

    # Item 3: SIGINT mid-run leaves no temporary file.
    if os.path.exists(datagen):
        def big_setup(d):
            subprocess.run([datagen, "--preset", "users-items", "--rows", "150000", "--seed", "1", "--out", os.path.join(d, "in.csv"),
                            "--truth", os.path.join(d, "truth.json")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        big_formula = "y ~ 1 + x + (1 | user) + (1 | item)"
        for delay in [0.3, 1.0, 2.5]:
            add(Case("3", "SIGINT during adam on a CSV after %.1f s" % delay,
                     ["fit", "{in}", "-f", big_formula, "--method", "adam", "--json", "{d}/out.json"], "signal", big_setup, signal_after=delay,
                     inputs=["in.csv"]))
            add(Case("3", "SIGINT during convert after %.1f s" % delay, ["convert", "{in}", "{d}/x.lmmbin"], "signal", big_setup,
                     signal_after=delay, inputs=["in.csv"]))
            add(Case("3", "SIGTERM during the exact fit after %.1f s" % delay,
                     ["fit", "{in}", "-f", big_formula, "--json", "{d}/out.json", "--ranef", "{d}/r.csv"], "signal", big_setup,
                     signal_after=delay, inputs=["in.csv"]))

    # Item 4: shift and scale invariance.
    for shift in [1e3, 1e4, 1e6, 1e8, 1e10, 1e12]:
        text = transform_column(0, lambda v, s=shift: v + s)
        add(Case("4", "y + %g" % shift, ["fit", "{d}/d.csv", "-f", F, "--json", "{d}/out.json", "-q"], "ok", data(text),
                 fits_like_lme4_shift(shift)))
    for scale in [1e-12, 1e-6, 1e6, 1e12]:
        text = transform_column(0, lambda v, s=scale: v * s)
        add(Case("4", "y × %g" % scale, ["fit", "{d}/d.csv", "-f", F, "--json", "{d}/out.json", "-q"], "ok", data(text),
                 fits_like_lme4_scale(scale)))

    # Item 5: non-finite numbers in used columns.
    for value in ["Inf", "-Inf", "inf", "Infinity", "1e400", "-1e999", "9" * 10_000_000]:
        for col, what in [(0, "response"), (1, "covariate")]:
            for method in ["exact", "em", "adam", "iterative"]:
                add(Case("5", "%s in the %s (%s)" % (value[:12], what, method),
                         ["fit", "{d}/d.csv", "-f", F, "--method", method, "-q"], "error", data(replace_field(6, col, value)),
                         expect_in_message="d.csv:7:%d" % (col + 1)))
    add(Case("5", "Inf in lmm convert", ["convert", "{d}/d.csv", "{d}/o.lmmbin"], "error", data(replace_field(6, 1, "Inf")),
             expect_in_message="d.csv:7:2"))
    for value in ["NA", "", "NaN"]:
        add(Case("5", "%r in a covariate drops the row" % value, ["fit", "{d}/d.csv", "-f", F, "--json", "{d}/out.json", "-q"], "ok",
                 data(replace_field(6, 1, value)),
                 lambda d, out, err: (json.load(open(os.path.join(d, "out.json")))["nobs"] == 179, "nobs 179")))

    # Item 6: labels that are not UTF-8.
    def labels_csv(labels):
        rows = [b"y,x,g"]
        rng = random.Random(1)
        for i in range(60):
            rows.append(b"%.4f,%d,%s" % (rng.random() * 10 + i % 6, i % 10, labels[i % len(labels)]))
        return b"\n".join(rows) + b"\n"
    bad = [b"g\xff", b"g\xfe", b"g\xc0", b"h", b"i", b"j"]
    for method in ["exact", "em", "adam", "iterative"]:
        add(Case("6", "labels g\\xff g\\xfe g\\xc0 h i j (%s)" % method, ["fit", "{d}/d.csv", "-f", "y ~ x + (1 | g)", "--method", method, "-q"],
                 "error", data(labels_csv(bad), binary=True), expect_in_message="d.csv:2:3"))
    for label in [b"\xc3\x28", b"\xed\xa0\x80", b"\xf5\x80\x80\x80", b"a\xe2\x82"]:
        add(Case("6", "label %r" % label, ["fit", "{d}/d.csv", "-f", "y ~ x + (1 | g)", "-q"], "error",
                 data(labels_csv([label, b"h", b"i", b"j"]), binary=True)))
    add(Case("6", "UTF-8 labels stay 6 groups", ["fit", "{d}/d.csv", "-f", "y ~ x + (1 | g)", "--json", "{d}/out.json", "-q"], "ok",
             data(labels_csv([x.encode() for x in ["g\ufffd", "g", "gé", "東京", "🙂", "h"]]), binary=True),
             lambda d, out, err: (json.load(open(os.path.join(d, "out.json")))["ngroups"] in ([6], {"g": 6}, 6), "6 groups")))

    # Item 7: given variances reported as given or refused.
    def given(vc):
        entries = [{"grp": "Subject", "var1": "(Intercept)", "var2": None, "vcov": vc[0]},
                   {"grp": "Subject", "var1": "Days", "var2": None, "vcov": vc[1]},
                   {"grp": "Subject", "var1": "(Intercept)", "var2": "Days", "vcov": vc[2]},
                   {"grp": "Residual", "var1": None, "var2": None, "vcov": vc[3]}]
        return lambda d: (copy_sleep()(d), write(os.path.join(d, "v.json"), json.dumps({"varcorr": entries})))
    for vc in [[1e12, 35.07, 0, 654.9], [612.1, 1e12, 0, 654.9], [1e-12, 35.07, 0, 654.9], [612.1, 35.07, 0, 1e-12], [1e15, 1e-5, 0, 1]]:
        def check_given(d, out, err, vc=vc):
            _, got = json_numbers(os.path.join(d, "out.json"))
            return all(close(a, b, 1e-6) for a, b in zip(got, vc)), "reported %s" % got
        add(Case("7", "given variances %s" % vc, ["fit", "{in}", "-f", F, "--variances", "{d}/v.json", "--json", "{d}/out.json", "-q"],
                 "ok-or-error", given(vc), check_given))

    # Item 8: removed terms.
    for formula in ["Reaction ~ Days - Foo + (1 | Subject)", "Reaction ~ Days - log(Foo) + (1 | Subject)",
                    "Reaction ~ Days - Days:Foo + (1 | Subject)"]:
        add(Case("8", formula, ["fit", "{in}", "-f", formula, "-q"], "error", copy_sleep()))

    # Item 9: .lmmbin bit flips (a sample of every part of the file).
    def flips():
        base = tempfile.mkdtemp(prefix="lmm-catalogue-")
        path = os.path.join(base, "s.lmmbin")
        subprocess.run([lmm, "convert", SLEEPSTUDY, path, "--categorical", "Subject", "--rows-per-chunk", "64"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        data_bytes = open(path, "rb").read()
        shutil.rmtree(base)
        return data_bytes
    original = flips()
    rng = random.Random(9)
    positions = sorted(set(list(range(0, min(64, len(original)))) + rng.sample(range(len(original)), min(200, len(original)))))
    for position in positions:
        bit = rng.randrange(8)
        flipped = bytearray(original)
        flipped[position] ^= 1 << bit
        def check_flip(d, out, err):
            return False, "a damaged file was accepted"
        add(Case("9", "bit %d of byte %d" % (bit, position), ["fit", "{d}/s.lmmbin", "-f", F, "--method", "adam", "--epochs", "2", "-q"],
                 "error", data(bytes(flipped), "s.lmmbin", binary=True), check_flip))

    # Item 10: deep nesting.
    for depth in [4600, 5000, 60_000]:
        add(Case("10", "%d nested parentheses" % depth, ["fit", "{in}", "-f", "Reaction ~ " + "(" * depth + "Days" + ")" * depth + " + (1 | Subject)", "-q"],
                 "error", copy_sleep()))
        add(Case("10", "%d unclosed parentheses" % depth, ["fit", "{in}", "-f", "Reaction ~ " + "(" * depth, "-q"], "error", copy_sleep()))
    # (One argument may hold at most 128 KiB on Linux.)
    add(Case("10", "15,000 plus signs", ["fit", "{in}", "-f", "Reaction ~ " + " + ".join(["Days"] * 15_000) + " + (1 | Subject)", "-q"],
             "error", copy_sleep()))

    # Item 11: .lmmbin header fields.
    for offset, value in [(16, struct.pack("<q", 2**63 - 1)), (16, struct.pack("<q", -1)), (23, b"\xff"), (24, struct.pack("<q", 2**62))]:
        damaged = bytearray(original)
        damaged[offset:offset + len(value)] = value
        add(Case("11", "header bytes at %d = %s" % (offset, value.hex()), ["fit", "{d}/s.lmmbin", "-f", F, "--method", "adam", "-q"], "error",
                 data(bytes(damaged), "s.lmmbin", binary=True)))

    # Item 12: memory limits.
    if os.path.exists(datagen) and heavy:
        def million(d):
            subprocess.run([datagen, "--preset", "users-items", "--rows", "1000000", "--seed", "1", "--out", os.path.join(d, "in.csv"),
                            "--truth", os.path.join(d, "truth.json")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for limit in [256, 512, 1024]:
            for method in ["exact", "adam"]:
                add(Case("12", "1M rows, %s, ulimit -v %d MB" % (method, limit),
                         ["fit", "{in}", "-f", "y ~ 1 + x + (1 | user) + (1 | item)", "--method", method, "-q"], "ok-or-error",
                         million, limit_mb=limit, inputs=["in.csv"], timeout=600))
    elif os.path.exists(datagen):
        def small(d):
            subprocess.run([datagen, "--preset", "users-items", "--rows", "50000", "--seed", "1", "--out", os.path.join(d, "in.csv"),
                            "--truth", os.path.join(d, "truth.json")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for limit in [150, 250, 400]:
            for method in ["exact", "adam"]:
                add(Case("12", "50k rows, %s, ulimit -v %d MB" % (method, limit),
                         ["fit", "{in}", "-f", "y ~ 1 + x + (1 | user) + (1 | item)", "--method", method, "-q"]
                         + (["--epochs", "3"] if method == "adam" else []), "ok-or-error",
                         small, limit_mb=limit, inputs=["in.csv"]))

    # Messages that mislead.
    perfect = "y,x,g\n" + "\n".join("%d,%d,g%d" % (3 * (i % 10) + 1, i % 10, i % 6) for i in range(60)) + "\n"
    groups = "y,x,g\n" + "\n".join("%d,%d,g%d" % (3 * (i % 6) + 2, i % 10, i % 6) for i in range(60)) + "\n"
    constant = "y,x,g\n" + "\n".join("5,%d,g%d" % (i % 10, i % 6) for i in range(60)) + "\n"
    for method in ["exact", "em", "mackay", "iterative", "adam"]:
        add(Case("msg", "y = 3x + 1 (%s)" % method, ["fit", "{d}/d.csv", "-f", "y ~ x + (1 | g)", "--method", method, "--json", "{d}/o.json", "-q"],
                 "error", data(perfect), expect_in_message="exactly"))
        add(Case("msg", "y explained by the groups (%s)" % method, ["fit", "{d}/d.csv", "-f", "y ~ x + (1 | g)", "--method", method, "-q"],
                 "error", data(groups), expect_in_message="'g'" if method != "adam" else "exactly"))
        add(Case("msg", "constant y (%s)" % method, ["fit", "{d}/d.csv", "-f", "y ~ x + (1 | g)", "--method", method, "-q"], "error",
                 data(constant), expect_in_message="is constant"))
    for method in ["exact", "em", "iterative", "adam"]:
        for factor in [1e200, 1e-200]:
            add(Case("msg", "y × %g (%s)" % (factor, method), ["fit", "{d}/d.csv", "-f", F, "--method", method, "-q"], "error",
                     data(transform_column(0, lambda v, f=factor: v * f)), expect_in_message="too"))
        add(Case("msg", "header-only CSV (%s)" % method, ["fit", "{d}/d.csv", "-f", F, "--method", method, "-q"], "error",
                 data("Reaction,Days,Subject\n"), expect_in_message="d.csv: no data rows"))
        add(Case("msg", "categorical response (%s)" % method, ["fit", "{d}/d.csv", "-f", F, "--method", method, "-q"], "error",
                 data(replace_field(9, 0, "abc")), expect_in_message="d.csv:10:1"))
    add(Case("msg", "exact method on .lmmbin", ["fit", "{d}/s.lmmbin", "-f", F, "--json", "{d}/out.json", "-q"], "ok",
             data(original, "s.lmmbin", binary=True), fits_like_lme4()))
    add(Case("msg", "formula starting with '-'", ["fit", "{in}", "-f", "-1 + Days", "-q"], "error", copy_sleep(), expect_in_message="'~'"))
    add(Case("msg", "formula 'Reaction ~ -1 + Days + (1 | Subject)'", ["fit", "{in}", "-f", "Reaction ~ -1 + Days + (1 | Subject)", "-q"],
             "ok", copy_sleep(), lambda d, out, err: (True, "")))
    valid_vc = json.dumps({"varcorr": [{"grp": "Subject", "var1": "(Intercept)", "var2": None, "vcov": 612.1},
                                       {"grp": "Residual", "var1": None, "var2": None, "vcov": 654.9}]}, indent=1)
    for cut in range(0, len(valid_vc) - 1, 3):
        add(Case("msg", "variances JSON cut at %d" % cut, ["fit", "{in}", "-f", "Reaction ~ Days + (1 | Subject)", "--variances", "{d}/v.json", "-q"],
                 "error", lambda d, c=cut: (copy_sleep()(d), write(os.path.join(d, "v.json"), valid_vc[:c])), expect_in_message="v.json"))
    for bad_vc in ['{"varcorr": [{"grp": "Subject", "vcov": -1}, {"grp": "Residual", "vcov": 1}]}',
                   '{"varcorr": [{"grp": "Subject", "vcov": 1e999}]}', '{"varcorr": 3}', '[]', '{"varcorr": [{"grp": "Subject" "vcov": 1}]}']:
        add(Case("msg", "variances %s" % bad_vc[:40], ["fit", "{in}", "-f", "Reaction ~ Days + (1 | Subject)", "--variances", "{d}/v.json", "-q"],
                 "error", lambda d, t=bad_vc: (copy_sleep()(d), write(os.path.join(d, "v.json"), t))))

    # Bad CSVs: truncations, ragged rows, quotes, random bytes.
    text = open(SLEEPSTUDY, "rb").read()
    rng = random.Random(5)
    for k in range(60):
        cut = rng.randrange(len(text))
        add(Case("csv", "truncated at byte %d" % cut, ["fit", "{d}/d.csv", "-f", F, "-q"], "ok-or-error", data(text[:cut], binary=True)))
    for k in range(60):
        mutated = bytearray(text)
        position = rng.randrange(len(mutated))
        kind = k % 4
        if kind == 0:
            mutated.insert(position, ord('"'))
        elif kind == 1:
            mutated.insert(position, ord(','))
        elif kind == 2:
            mutated[position] = rng.randrange(256)
        else:
            mutated[position:position + 8] = bytes(rng.randrange(256) for _ in range(8))
        add(Case("csv", "mutation %d at byte %d" % (kind, position), ["fit", "{d}/d.csv", "-f", F, "-q"], "ok-or-error",
                 data(bytes(mutated), binary=True)))

    # Formulas.
    for formula in ["Reaction ~", "~ Days", "Reaction ~ Days + (1 | )", "Reaction ~ Days + ( | Subject)", "Reaction ~ Days + (1 | Subject",
                    "Reaction ~ Days + 1 | Subject)", "Reaction ~ Days +", "Reaction ~ Days ++ (1 | Subject)", "Reaction ~ foo(Days) + (1 | Subject)",
                    "Reaction ~ log(Days) + (1 | Subject)", "Reaction ~ Days + (1 | Subject) + (1 | Nope)", "Reaction ~ Days + (1 || Subject",
                    "Reaction ~ poly(Days, 20) + (1 | Subject)", "Reaction ~ Days + (1 | Days)", "Reaction ~ Subject + (1 | Subject)",
                    "Reaction ~ I(Days / 0) + (1 | Subject)", "Reaction ~ I(Days^400) + (1 | Subject)", "Reaction ~ exp(Days * 1000) + (1 | Subject)",
                    "Reaction ~ Days + (1 | Subject)" + " " * 100_000 + "+", "Reaction ~ " + "x" * 100_000 + " + (1 | Subject)"]:
        add(Case("formula", formula[:60], ["fit", "{in}", "-f", formula, "-q"], "ok-or-error", copy_sleep()))
    return cases


def fits_like_lme4_shift(shift):
    def check(d, out, err):
        _, vc = json_numbers(os.path.join(d, "out.json"))
        return all(close(a, b, 1e-3) for a, b in zip(vc, LME4_VC)), "variance components %s (lme4: %s)" % (vc, LME4_VC)
    return check


def fits_like_lme4_scale(scale):
    def check(d, out, err):
        _, vc = json_numbers(os.path.join(d, "out.json"))
        return all(close(a, b * scale * scale, 1e-3) for a, b in zip(vc, LME4_VC)), "variance components %s" % vc
    return check


# ----------------------------------------------------------------------------------------- running

def run_case(lmm, case, timeout):
    try:
        return run_one(lmm, case, timeout)
    except Exception as error:  # the harness itself failed: report it, never count it as a pass
        return "wrong", "harness error: %r" % error, None


def run_one(lmm, case, timeout):
    d = tempfile.mkdtemp(prefix="lmm-catalogue-")
    tmp = os.path.join(d, "tmp")
    os.makedirs(tmp)
    try:
        if case.setup:
            case.setup(d)
        inputs = {name: sha(os.path.join(d, name)) for name in case.inputs}
        argv = [a.replace("{in}", os.path.join(d, "in.csv")).replace("{d}", d) for a in case.argv]
        env = dict(os.environ, TMPDIR=tmp)
        preexec = None
        if case.limit_mb:
            limit = case.limit_mb * 1024 * 1024
            import resource
            preexec = lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        before = sorted(os.listdir(d))
        start = time.time()
        process = subprocess.Popen([lmm] + argv, cwd=d, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=preexec)
        sent = None
        try:
            if case.signal_after:
                try:
                    process.wait(timeout=case.signal_after)
                except subprocess.TimeoutExpired:
                    sent = signal.SIGTERM if "SIGTERM" in case.name else signal.SIGINT
                    process.send_signal(sent)
            out, err = process.communicate(timeout=case.timeout or timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            return "hang", "no exit after %d s" % (case.timeout or timeout), d
        out = out.decode("utf-8", "replace")
        err = err.decode("utf-8", "replace")
        code = process.returncode
        # Data safety, whatever the outcome.
        for name, digest in inputs.items():
            if sha(os.path.join(d, name)) != digest:
                return "data-loss", "input %s changed" % name, d
        if os.listdir(tmp):
            return "data-loss", "temporary files left: %s" % os.listdir(tmp), d
        leftovers = [n for n in os.listdir(d) if n.startswith(".") or ".tmp" in n]
        if leftovers:
            return "data-loss", "temporary files left: %s" % leftovers, d
        if not stat.S_ISCHR(os.stat("/dev/null").st_mode):
            return "data-loss", "/dev/null replaced", d
        if sent is not None and code == -sent:
            return "correct", "ended by the signal it was sent, nothing left", d
        if code < 0 or code >= 128:
            return "crash", "signal %d / exit %d: %s" % (-code if code < 0 else code - 128, code, err.strip()[-300:]), d
        message = err.strip().splitlines()[-1] if err.strip() else ""
        if code != 0:
            if "internal error" in err or "lmm: error:" not in err and "Error:" not in err:
                return "wrong", "unclear error: %s" % err.strip()[-300:], d
            if case.expect in ("ok",) and sent is None:
                return "wrong", "valid input refused: %s" % err.strip()[-300:], d
            if case.expect_in_message and case.expect_in_message not in err:
                return "wrong", "message lacks %r: %s" % (case.expect_in_message, err.strip()[-300:]), d
            if case.expect == "signal":
                return "correct", "finished before the signal (error): %s" % message[-200:], d
            return "clean-error", err.strip()[-200:], d
        if case.expect == "error":
            if case.check:
                ok, why = case.check(d, out, err)
                return ("correct" if ok else "wrong"), why, d
            return "wrong", "accepted (exit 0) where an error was due", d
        if case.check:
            try:
                ok, why = case.check(d, out, err)
            except Exception as error:  # a missing or malformed output
                ok, why = False, "check failed: %r" % error
            return ("correct" if ok else "wrong"), why, d
        return "correct", "exit 0", d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("lmm", help="path to the lmm binary (release build recommended)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--only", help="run the cases whose item or name contains this")
    parser.add_argument("--heavy", action="store_true", help="memory cases on 1M rows (slow)")
    parser.add_argument("--verbose", action="store_true", help="print every case")
    args = parser.parse_args()
    lmm = os.path.abspath(args.lmm)
    cases = catalogue(lmm, args.heavy)
    if args.only:
        cases = [c for c in cases if args.only in c.item or args.only in c.name]
    # Cases that signal or limit memory run alone (timing matters); the rest in parallel.
    results = []
    serial = [c for c in cases if c.signal_after or c.limit_mb]
    parallel = [c for c in cases if not (c.signal_after or c.limit_mb)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = {pool.submit(run_case, lmm, c, args.timeout): c for c in parallel}
        for future in concurrent.futures.as_completed(futures):
            results.append((futures[future], future.result()))
    for c in serial:
        results.append((c, run_case(lmm, c, args.timeout)))
    classes = ["clean-error", "correct", "crash", "hang", "wrong", "data-loss"]
    def table(selection, title):
        counts = {k: 0 for k in classes}
        for _, (outcome, _, _) in selection:
            counts[outcome] += 1
        print("%s: %d cases; " % (title, len(selection)) + ", ".join("%s %d" % (k, counts[k]) for k in classes))
        return counts
    results.sort(key=lambda r: (r[0].item, r[0].name))
    for case, (outcome, why, _) in results:
        if args.verbose or outcome not in ("clean-error", "correct"):
            print("%-12s item %-7s %s: %s" % (outcome, case.item, case.name[:70], why[:300]))
    print()
    items = sorted({c.item for c, _ in results}, key=lambda s: (not s.isdigit(), int(s) if s.isdigit() else 0, s))
    for item in items:
        table([r for r in results if r[0].item == item], "item %-7s" % item)
    print()
    every = table(results, "all    ")
    return 0 if all(every[k] == 0 for k in ("crash", "hang", "wrong", "data-loss")) else 1


if __name__ == "__main__":
    sys.exit(main())
