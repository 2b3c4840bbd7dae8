"""Every default of an option the C API defines is the C library's, never a second copy.

The option classes of the binding (medvision.LoadOptions, ModelOptions, SegmentOptions,
ExplainOptions, EvaluateOptions, CalibrateOptions) hold the C structs filled by their
mv_*_options_init() (tests/capi/test_wrapper.cpp checks that field by field). Here the Python
signatures, the pybind11 signatures of medvision._core, the type stub and the CLI's --help are
compared with them, so that a literal default typed anywhere again is caught.
"""
import ast
import inspect
import re
import subprocess
from pathlib import Path

import pytest

import medvision as mv
from medvision import _core

from conftest import CLI, tool

OPTION_CLASSES = [mv.LoadOptions, mv.ModelOptions, mv.SegmentOptions, mv.ExplainOptions,
                  mv.EvaluateOptions, mv.CalibrateOptions]


def fields(cls):
    return [n for n, v in vars(cls).items() if isinstance(v, property)]


def values(cls):
    o = cls()
    return {n: getattr(o, n) for n in fields(cls)}


#: Python parameter -> (option class, field), per public callable. None as a default means
#: "the library's default"; it is allowed only where listed in NONE_MEANS_DEFAULT.
PUBLIC = {
    mv.load_image: (mv.LoadOptions, {"frame": "frame", "apply_voi": "apply_voi",
                                     "max_values": "max_values", "series_uid": "series_uid",
                                     "pixel_spacing": "pixel_spacing"}),
    mv.load_series: (mv.LoadOptions, {"series_uid": "series_uid"}),
    mv.Model.classify: (mv.LoadOptions, {"frame": "frame", "apply_voi": "apply_voi",
                                         "max_values": "max_values", "series_uid": "series_uid",
                                         "pixel_spacing": "pixel_spacing"}),
    mv.Model.__init__: (mv.ModelOptions, {"device": "device", "num_threads": "num_threads",
                                          "precision": "precision", "warmup": "warmup",
                                          "optimize": "optimize"}),
    mv.Model.segment: (mv.SegmentOptions, {"overlap": "overlap", "batch_size": "batch_size",
                                           "mirror": "mirror", "probabilities": "probabilities",
                                           "largest_component": "largest_component",
                                           "fill_holes": "fill_holes"}),
    mv.Model.explain: (mv.ExplainOptions, {"method": "method", "label": "label"}),
    mv.evaluate: (mv.EvaluateOptions, {"threshold": "threshold", "sensitivity": "sensitivity",
                                       "bootstrap": "bootstrap", "seed": "seed", "bins": "bins",
                                       "level": "level"}),
    mv.calibrate: (mv.CalibrateOptions, {
        "method": "method", "rule": "rule", "target": "target", "refer_mode": "refer_mode",
        "refer_half_width": "refer_half_width",
        "refer_logit_half_width": "refer_logit_half_width", "refer_npv": "refer_npv",
        "refer_ppv": "refer_ppv", "conformal_score": "conformal_score",
        "description": "data_description", "version": "version"}),
}

#: Parameters whose None means "keep the C default", which is a "not set" value there (NULL, a
#: negative or 0 sentinel: the manifest's setting, no extra decision, the file's spacing).
NONE_MEANS_DEFAULT = {
    (mv.load_image, "pixel_spacing"), (mv.Model.classify, "pixel_spacing"),
    (mv.Model.__init__, "device"),
    (mv.Model.segment, "overlap"), (mv.Model.segment, "batch_size"),
    (mv.Model.segment, "mirror"), (mv.Model.segment, "largest_component"),
    (mv.Model.segment, "fill_holes"), (mv.Model.explain, "label"),
    (mv.evaluate, "threshold"), (mv.evaluate, "sensitivity"),
}

#: Parameters named like a C option field that are not that option: images per forward pass of
#: the Python layer (no C option), calibrate's switch of conformal sets, overlay opacity.
NOT_C_OPTIONS = {"batch_size", "conformal_alpha", "alpha"}
#: The same, for one callable: enable_logging's level is a `logging` level.
NOT_C_OPTION_OF = {("enable_logging", "level")}


@pytest.mark.parametrize("fn", list(PUBLIC), ids=lambda f: f.__qualname__)
def test_public_signature_defaults_are_the_c_library(fn):
    cls, mapping = PUBLIC[fn]
    c = values(cls)
    params = inspect.signature(fn).parameters
    for name, field in mapping.items():
        assert name in params, f"{fn.__qualname__} lost its parameter {name}"
        default = params[name].default
        if (fn, name) in NONE_MEANS_DEFAULT:
            assert default is None, f"{fn.__qualname__}({name}=...) should be None"
        else:
            assert default == c[field] and type(default) is type(c[field]), (
                f"{fn.__qualname__}({name}={default!r}) but {cls.__name__}().{field} is "
                f"{c[field]!r}")


def _public_callables():
    for name in mv.__all__:
        obj = getattr(mv, name)
        if inspect.isfunction(obj):
            yield obj.__qualname__, obj
        elif inspect.isclass(obj) and obj.__module__.startswith("medvision._") and \
                not obj.__module__.endswith("_core"):
            for attr, member in vars(obj).items():
                if inspect.isfunction(member):
                    yield f"{obj.__name__}.{attr}", member


def test_no_public_parameter_restates_an_option_default():
    """Any parameter named like a C option field, anywhere in the public API, defaults to that
    field's C value (of one of the option types that have it) or to None."""
    by_name = {}
    for cls in OPTION_CLASSES:
        for n, v in values(cls).items():
            by_name.setdefault(n, []).append(v)
    by_name["description"] = by_name["data_description"]
    checked = 0
    for qualname, fn in _public_callables():
        for p in inspect.signature(fn).parameters.values():
            if p.name not in by_name or p.name in NOT_C_OPTIONS or p.default is p.empty or \
                    (qualname, p.name) in NOT_C_OPTION_OF:
                continue
            checked += 1
            assert p.default is None or p.default in by_name[p.name], (
                f"{qualname}({p.name}={p.default!r}) restates a default; the C library's is "
                f"{by_name[p.name]}")
    assert checked >= 30


#: _core callables (pybind11) -> option class.
CORE = {
    "Image.load": (_core.Image.load, mv.LoadOptions),
    "Image.load_memory": (_core.Image.load_memory, mv.LoadOptions),
    "Image.load_series": (_core.Image.load_series, mv.LoadOptions),
    "Model.__init__": (_core.Model.__init__, mv.ModelOptions),
    "Model.run_many": (_core.Model.run_many, mv.LoadOptions),
    "Model.segment": (_core.Model.segment, mv.SegmentOptions),
    "explain": (_core.explain, mv.ExplainOptions),
    "evaluate": (_core.evaluate, mv.EvaluateOptions),
    "SegmentationEvaluator.__init__": (_core.SegmentationEvaluator.__init__, mv.EvaluateOptions),
}


def _pybind_defaults(fn):
    """{parameter: default} from the signature line pybind11 writes into __doc__."""
    line = next(l for l in fn.__doc__.splitlines() if "(" in l)
    out = {}
    for m in re.finditer(r"(\w+): [\w.\[\], ]+? = ([^,)]+(?:\([^)]*\))?)", line):
        text = m.group(2).strip()
        try:
            out[m.group(1)] = ast.literal_eval(text)
        except ValueError:
            out[m.group(1)] = text  # e.g. None
    return out


@pytest.mark.parametrize("name", list(CORE))
def test_core_signature_defaults_are_the_c_library(name):
    fn, cls = CORE[name]
    c = values(cls)
    defaults = _pybind_defaults(fn)
    shared = [k for k in defaults if k in c]
    assert shared, f"_core.{name}: no option parameters found in {fn.__doc__.splitlines()[0]}"
    for k in shared:
        if defaults[k] is None:  # pixel_spacing: None keeps the C default
            continue
        assert defaults[k] == c[k], (
            f"_core.{name}({k}={defaults[k]!r}) but {cls.__name__}().{k} is {c[k]!r}")


def test_stub_writes_option_defaults_as_ellipsis():
    """_core.pyi must not carry a second copy either: option parameters default to ... (or
    None)."""
    stub = Path(_core.__file__).with_name("_core.pyi")
    if not stub.exists():
        stub = Path(__file__).resolve().parents[1] / "medvision" / "_core.pyi"
    tree = ast.parse(stub.read_text())
    names = set()
    for cls in OPTION_CLASSES:
        names.update(fields(cls))
    names -= NOT_C_OPTIONS
    checked = 0
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef):
            continue
        a = node.args
        pairs = list(zip(a.args[len(a.args) - len(a.defaults):], a.defaults)) + [
            (k, d) for k, d in zip(a.kwonlyargs, a.kw_defaults) if d is not None]
        for arg, d in pairs:
            if arg.arg not in names:
                continue
            checked += 1
            ok = isinstance(d, ast.Constant) and (d.value is Ellipsis or d.value is None)
            assert ok, f"_core.pyi: {node.name}({arg.arg}={ast.unparse(d)}) restates a default"
    assert checked >= 20


def test_option_objects_are_fresh_and_settable():
    a, b = mv.SegmentOptions(), mv.SegmentOptions()
    a.overlap = 0.25
    assert b.overlap != 0.25 or values(mv.SegmentOptions)["overlap"] == 0.25
    m = mv.ModelOptions()
    m.precision = "reduced"
    assert m.precision == "reduced"
    with pytest.raises(mv.InvalidArgumentError):
        m.precision = "half"
    x = mv.ExplainOptions()
    x.method = "gradcam++"
    assert x.method == "gradcam++"
    lo = mv.LoadOptions()
    lo.pixel_spacing = (0.5, 0.7)
    assert lo.pixel_spacing == (0.5, 0.7)


def _help_defaults(command):
    out = subprocess.run([str(tool(CLI)), command, "--help"], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    # CLI11: "  --target FLOAT=0.9   Target ..."
    return {m.group(1): m.group(2) for m in re.finditer(r"(--[\w-]+) \w+=(\S+)", out)}


def _same(shown, value):
    if isinstance(value, bool):
        return shown in (str(value).lower(), str(int(value)))
    if isinstance(value, (int, float)):
        return float(shown) == float(value)
    return shown == value


@pytest.mark.parametrize("command,flags", [
    ("calibrate", {"--method": (mv.CalibrateOptions, "method"),
                   "--rule": (mv.CalibrateOptions, "rule"),
                   "--target": (mv.CalibrateOptions, "target"),
                   "--refer-band": (mv.CalibrateOptions, "refer_mode"),
                   "--refer": (mv.CalibrateOptions, "refer_half_width"),
                   "--refer-logit": (mv.CalibrateOptions, "refer_logit_half_width"),
                   "--refer-npv": (mv.CalibrateOptions, "refer_npv"),
                   "--refer-ppv": (mv.CalibrateOptions, "refer_ppv"),
                   "--conformal-score": (mv.CalibrateOptions, "conformal_score")}),
    ("evaluate", {"--bootstrap": (mv.EvaluateOptions, "bootstrap"),
                  "--seed": (mv.EvaluateOptions, "seed")}),
    ("explain", {"--method": (mv.ExplainOptions, "method")}),
    ("info", {"--frame": (mv.LoadOptions, "frame")}),
    ("classify", {"--threads": (mv.ModelOptions, "num_threads")}),
    ("segment", {"--threads": (mv.ModelOptions, "num_threads")}),
    ("bench", {"--threads": (mv.ModelOptions, "num_threads")}),
])
def test_cli_help_shows_the_c_defaults(command, flags):
    shown = _help_defaults(command)
    for flag, (cls, field) in flags.items():
        assert flag in shown, f"medvision {command} --help shows no default for {flag}"
        value = getattr(cls(), field)
        assert _same(shown[flag], value), (
            f"medvision {command} {flag} defaults to {shown[flag]} but {cls.__name__}()."
            f"{field} is {value!r}")


SOURCES = Path(__file__).resolve().parents[1]
HOLDERS = {"_LOAD", "_MODEL", "_SEGMENT", "_EXPLAIN", "_EVALUATE", "_CAL"}


def _option_names():
    names = set()
    for cls in OPTION_CLASSES:
        names.update(fields(cls))
    return (names | {"description"}) - NOT_C_OPTIONS


def test_python_sources_read_defaults_from_the_options_objects():
    """In medvision/*.py an option parameter defaults to an attribute of one of the objects that
    hold the C defaults (_LOAD, _MODEL, ...) or to None, never to a literal, even one that
    happens to equal today's C value."""
    names = _option_names()
    checked = 0
    for path in sorted((SOURCES / "medvision").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef):
                continue
            a = node.args
            pairs = list(zip(a.args[len(a.args) - len(a.defaults):], a.defaults)) + [
                (k, d) for k, d in zip(a.kwonlyargs, a.kw_defaults) if d is not None]
            for arg, d in pairs:
                if arg.arg not in names or (node.name, arg.arg) in NOT_C_OPTION_OF:
                    continue
                checked += 1
                held = isinstance(d, ast.Attribute) and isinstance(d.value, ast.Name) and \
                    d.value.id in HOLDERS
                none = isinstance(d, ast.Constant) and d.value is None
                assert held or none, (
                    f"{path.name}: {node.name}({arg.arg}={ast.unparse(d)}) restates a default; "
                    f"read it from {sorted(HOLDERS)}")
    assert checked >= 30


def test_binding_sources_give_no_literal_option_default():
    """bindings/python/src: py::arg("<option field>") = <literal> is a second copy."""
    names = _option_names()
    found = []
    for path in sorted((SOURCES / "src").glob("*.cpp")):
        text = path.read_text()
        for m in re.finditer(r'py::arg\("(\w+)"\)\s*=\s*([^,)\n]+)', text):
            value = m.group(2).strip()
            if m.group(1) in names and re.fullmatch(r'-?[\d.]+f?|"[^"]*"|true|false', value):
                found.append(f"{path.name}: py::arg(\"{m.group(1)}\") = {value}")
    assert not found, "literal defaults of C options: " + "; ".join(found)
