"""Random valid NumPy programs: the fuzzer's generator.

A program is straight-line Python over NumPy names (``np.tanh(a)``, ``a.sum(axis=1)``,
``tracejit.cond(...)``), so the same function runs under NumPy, which is the oracle, and under
``tracejit.compile``. It is built by *running* it: each new statement is tried on the concrete
values made so far and kept only if NumPy accepts it, so every program is valid by construction
and every intermediate value (shape, dtype, contents) is known. That is what lets the shrinker
cut a program at any statement (the value becomes an input).

The generator draws every choice from a ``random.Random`` (or Hypothesis's ``st.randoms()``,
which can then shrink the choices); array contents come from a NumPy generator seeded by it.
"""
from __future__ import annotations

import linecache
import random
import re
import warnings
from dataclasses import dataclass, field, replace

import numpy as np

import tracejit
import tracejit.numpy as tnp

# (dtype, weight): floats and the default integers most often, every other dtype sometimes.
DTYPES = [(np.float32, 30), (np.float64, 25), (np.int64, 12), (np.int32, 10), (np.bool_, 8),
          (np.int8, 2), (np.uint8, 3), (np.int16, 2), (np.uint16, 1), (np.uint32, 2),
          (np.uint64, 1), (np.float16, 2)]
DIMS = [1, 1, 2, 3, 3, 4, 5, 0]  # size-1 often, size-0 sometimes
LAYOUTS = ["contiguous"] * 6 + ["strided", "reversed", "transposed", "broadcast"]


@dataclass
class Input:
    """An argument of the program: an array made from ``base`` by ``layout``, or a Python
    scalar (``layout == "scalar"``)."""
    name: str
    base: object
    layout: str = "contiguous"

    @property
    def value(self):
        b = self.base
        if self.layout == "strided":
            return b[::2]
        if self.layout == "reversed":
            return b[::-1]
        if self.layout == "transposed":
            return b.T
        if self.layout == "broadcast":
            return np.broadcast_to(b[:1], b.shape)
        return b

    def source(self) -> str:
        if self.layout == "scalar":
            return repr(self.base)
        b = self.base
        text = f"np.array({b.tolist()!r}, dtype=np.{b.dtype.name})"
        if b.shape and b.size == 0:
            text = f"np.zeros({b.shape}, dtype=np.{b.dtype.name})"
        return {"contiguous": text, "strided": f"{text}[::2]", "reversed": f"{text}[::-1]",
                "transposed": f"{text}.T",
                "broadcast": f"np.broadcast_to({text}[:1], {b.shape})"}[self.layout]


@dataclass
class Stmt:
    out: str
    expr: str  # Python expression over earlier names


@dataclass
class Program:
    inputs: list[Input]
    stmts: list[Stmt]
    outputs: list[str]
    grad: bool = False
    values: dict = field(default_factory=dict, repr=False)  # name -> NumPy value

    def source(self, name: str = "f") -> str:
        args = ", ".join(i.name for i in self.inputs)
        lines = [f"def {name}({args}):"]
        lines += [f"    {s.out} = {s.expr}" for s in self.stmts]
        if self.grad:
            terms = [f"np.sum(np.sin({o}))" for o in self.outputs]
            lines.append(f"    return {' + '.join(terms)}")
        elif len(self.outputs) == 1:
            lines.append(f"    return {self.outputs[0]}")
        else:
            lines.append(f"    return {', '.join(self.outputs)}")
        return "\n".join(lines) + "\n"

    def function(self):
        """The program as a Python function (its source registered with ``linecache``, so
        tracebacks and tracejit's messages show its lines)."""
        source = self.source()
        filename = f"<fuzz program {abs(hash(source)):x}>"
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        namespace = {"np": np, "tnp": tnp, "tracejit": tracejit}
        exec(compile(source, filename, "exec"), namespace)
        return namespace["f"]

    def args(self) -> list:
        return [i.value for i in self.inputs]

    def grad_argnums(self) -> tuple[int, ...]:
        return tuple(k for k, i in enumerate(self.inputs)
                     if i.layout != "scalar" and np.asarray(i.value).dtype == np.float64)

    def snippet(self, backend: str) -> str:
        """A runnable script that shows the failure."""
        call = "tracejit.compile(f, backend=%r)" % backend
        if self.grad:
            call = (f"tracejit.compile(tracejit.grad(f, argnums={self.grad_argnums()}), "
                    f"backend={backend!r})")
        lines = ["import numpy as np", "import tracejit", "import tracejit.numpy as tnp", "",
                 "", self.source().rstrip(), "", ""]
        lines.append("args = [")
        lines += [f"    {i.source()}," for i in self.inputs]
        lines.append("]")
        if not self.grad:
            lines.append("print(f(*args))  # NumPy")
        lines.append(f"print({call}(*args))  # tracejit")
        return "\n".join(lines) + "\n"

    def evaluate(self) -> "Program":
        """Run the statements under NumPy, recording every value; raises if NumPy refuses."""
        values = {i.name: i.value for i in self.inputs}
        namespace = {"np": np, "tnp": tnp, "tracejit": tracejit}
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for s in self.stmts:
                values[s.out] = eval(s.expr, namespace, dict(values))  # noqa: S307
        return replace(self, values=values)


class _Rejected(Exception):
    """A statement that cannot be made from the values at hand."""


# --- the generator ----------------------------------------------------------------------------
class Generator:
    def __init__(self, rnd: random.Random, grad: bool = False, max_stmts: int = 8):
        self.rnd = rnd
        self.np_rng = np.random.default_rng(rnd.randint(0, 2 ** 32 - 1))
        self.grad = grad
        self.max_stmts = max_stmts
        self.inputs: list[Input] = []
        self.stmts: list[Stmt] = []
        self.values: dict = {}
        self.names = (f"v{k}" for k in range(10 ** 6))

    # -- values --------------------------------------------------------------------------------
    def dtype(self):
        if self.grad and self.rnd.random() < 0.85:
            return np.dtype(np.float64)
        kinds, weights = zip(*DTYPES)
        if self.grad:  # finite differences need float64 all the way: no other float
            kinds, weights = zip(*[(k, w) for k, w in DTYPES if np.dtype(k).kind != "f"])
        return np.dtype(self.rnd.choices(kinds, weights)[0])

    def shape(self, rank=None):
        rank = self.rnd.choices([0, 1, 2, 3], [15, 30, 35, 20])[0] if rank is None else rank
        return tuple(self.rnd.choice(DIMS) for _ in range(rank))

    def data(self, shape, dtype):
        rng, dtype = self.np_rng, np.dtype(dtype)
        if dtype == np.bool_:
            return rng.random(shape) < 0.5
        if dtype.kind == "u":
            return rng.integers(0, 9, shape).astype(dtype)
        if dtype.kind == "i":
            return rng.integers(-6, 7, shape).astype(dtype)
        return np.round(rng.normal(0, 2, shape), 3).astype(dtype)

    def new_input(self, shape=None, dtype=None) -> str:
        shape = self.shape() if shape is None else tuple(shape)
        dtype = self.dtype() if dtype is None else np.dtype(dtype)
        name = f"a{len(self.inputs)}"
        layout = self.rnd.choice(LAYOUTS) if shape else "contiguous"
        if not shape and not self.grad and self.rnd.random() < 0.3:  # a Python scalar argument
            # (Not bool: Python's `True + True` is 2 but traced it follows NumPy's bool add.)
            kind = self.rnd.choice([float, int])
            base = {float: round(self.rnd.uniform(-3, 3), 2), int: self.rnd.randint(-4, 5),
                    bool: self.rnd.random() < 0.5}[kind]
            self.inputs.append(Input(name, base, "scalar"))
            self.values[name] = base
            return name
        if layout == "strided":
            base = self.data((2 * shape[0],) + shape[1:], dtype)
        elif layout == "transposed":
            base = self.data(shape[::-1], dtype)
        else:
            base = self.data(shape, dtype)
        item = Input(name, base, layout)
        self.inputs.append(item)
        self.values[name] = item.value
        return name

    def pick(self, accept=lambda v: True) -> str | None:
        names = [n for n, v in self.values.items() if accept(np.asarray(v))]
        if not names:
            return None
        # Recent values more often (programs become chains), but not always: values read by
        # several later statements make diamonds, which is where fusion has to choose.
        if self.rnd.random() < 0.4:
            return self.rnd.choice(names)
        weights = [1 + k for k in range(len(names))]
        return self.rnd.choices(names, weights)[0]

    def operand(self, accept=lambda v: True) -> str:
        name = self.pick(accept) if self.rnd.random() < 0.8 else None
        for _ in range(10):
            if name is not None:
                return name
            name = self.new_input()
            name = name if accept(np.asarray(self.values[name])) else None
        raise _Rejected  # no operand of the kind this statement needs

    # -- programs ------------------------------------------------------------------------------
    def program(self) -> Program:
        for _ in range(self.rnd.randint(1, 2)):
            self.new_input()
        target = self.rnd.randint(1, self.max_stmts)
        tries = 0
        while len(self.stmts) < target and (tries < 20 * target or not self.stmts):
            tries += 1
            make = self.rnd.choices(STATEMENTS, [w for _, w in STATEMENTS])[0][0]
            try:
                expr = make(self)
            except _Rejected:
                continue
            if expr is not None:
                self.try_statement(expr)
        outputs = self.choose_outputs()
        used = {n for s in self.stmts for n in names_in(s.expr)} | set(outputs)
        inputs = [i for i in self.inputs if i.name in used or self.rnd.random() < 0.1]
        program = Program(inputs, list(self.stmts), outputs, self.grad)
        return program.evaluate()

    def try_statement(self, expr: str) -> bool:
        namespace = {"np": np, "tnp": tnp, "tracejit": tracejit}
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                value = eval(expr, namespace, dict(self.values))  # noqa: S307
        except Exception:  # NumPy refuses: not a valid program, draw another statement
            return False
        if isinstance(value, (tuple, list)) or not isinstance(value, (np.ndarray, np.generic)):
            return False
        if value.size > 4096 or value.ndim > 4:
            return False
        name = next(self.names)
        self.stmts.append(Stmt(name, expr))
        self.values[name] = value
        return True

    def choose_outputs(self) -> list[str]:
        if not self.stmts:
            return [self.inputs[0].name]
        used = {n for s in self.stmts for n in names_in(s.expr)}
        outputs = [self.stmts[-1].out]
        for s in self.stmts[:-1]:
            if s.out not in used and self.rnd.random() < 0.5 and len(outputs) < 3:
                outputs.append(s.out)
        if self.grad:
            outputs = [o for o in outputs if np.asarray(self.values[o]).dtype.kind == "f"]
            if not outputs:
                floats = [s.out for s in self.stmts
                          if np.asarray(self.values[s.out]).dtype.kind == "f"]
                outputs = floats[-1:] or [self.inputs[0].name]
        return outputs


def names_in(expr: str) -> set[str]:
    """The program's names an expression reads (inputs a0.., statements v0..)."""
    return set(re.findall(r"\b[av]\d+\b", expr))


# --- statements: each returns an expression over existing names, or None ---------------------
UNARY = ["negative", "positive", "abs", "square", "sign", "floor", "ceil", "trunc", "rint",
         "tanh", "sin", "cos", "arctan", "exp", "expm1", "log", "log1p", "log2", "log10",
         "sqrt", "reciprocal", "sinh", "cosh", "exp2", "isnan", "isfinite", "isinf",
         "logical_not", "invert", "arcsin", "arccos", "arctanh", "tan", "round", "fabs",
         "arcsinh", "arccosh", "deg2rad", "rad2deg", "sinc", "nan_to_num"]
GRAD_UNARY = ["negative", "abs", "square", "tanh", "sin", "cos", "arctan", "exp", "sinh",
              "cosh", "log1p", "sqrt", "expm1", "arcsinh", "deg2rad", "sinc"]  # (fewer NaNs)
BINARY = ["add", "subtract", "multiply", "divide", "true_divide", "floor_divide", "remainder",
          "mod", "power", "maximum", "minimum", "arctan2", "logaddexp", "equal", "not_equal",
          "less", "less_equal", "greater", "greater_equal", "logical_and", "logical_or",
          "logical_xor", "bitwise_and", "bitwise_or", "bitwise_xor", "hypot", "fmax", "fmin",
          "logaddexp2"]
OPERATORS = ["+", "-", "*", "/", "//", "%", "**", "<", ">=", "==", "&", "|", "^"]
SCALARS = ["2", "-1", "0.5", "3.0", "True", "1.5", "-2.25", "0"]


def _ns(g) -> str:
    return g.rnd.choice(["np", "tnp"])


def _unary(g):
    x = g.operand()
    fn = g.rnd.choice(GRAD_UNARY if g.grad and g.rnd.random() < 0.7 else UNARY)
    v = np.asarray(g.values[x])
    if fn == "reciprocal" and v.dtype.kind in "iu" and (v == 0).any():
        return None  # 1 // 0 in integers: undefined in C, NumPy gives whatever the CPU does
    if g.rnd.random() < 0.15:
        return {"negative": f"-{x}", "abs": f"abs({x})", "invert": f"~{x}"}.get(fn, f"+{x}")
    return f"{_ns(g)}.{fn}({x})"


def _broadcast_partner(g, x) -> str:
    shape = np.shape(g.values[x])
    if g.rnd.random() < 0.5:
        name = g.pick(lambda v: _broadcasts(v.shape, shape))
        if name is not None:
            return name
    new = list(shape[g.rnd.randint(0, len(shape)):]) if shape else []
    new = [1 if g.rnd.random() < 0.3 else d for d in new]
    if g.rnd.random() < 0.2:
        new = [g.rnd.choice([1, 2])] + new
    return g.new_input(tuple(new))


def _broadcasts(a, b) -> bool:
    return all(x == y or 1 in (x, y) for x, y in zip(a[::-1], b[::-1]))


def _binary(g):
    x = g.operand()
    if g.rnd.random() < 0.3:
        y = g.rnd.choice(SCALARS)
    else:
        y = _broadcast_partner(g, x)
    if g.rnd.random() < 0.5:
        x, y = y, x
    if g.rnd.random() < 0.4:
        return f"{x} {g.rnd.choice(OPERATORS)} {y}"
    return f"{_ns(g)}.{g.rnd.choice(BINARY)}({x}, {y})"


def _where(g):
    c = g.operand(lambda v: v.dtype == np.bool_)
    a = _broadcast_partner(g, c)
    b = g.rnd.choice(SCALARS) if g.rnd.random() < 0.3 else _broadcast_partner(g, c)
    return f"{_ns(g)}.where({c}, {a}, {b})"


def _clip(g):
    x = g.operand(lambda v: v.dtype != np.bool_)
    lo, hi = sorted(g.rnd.sample([-2, -1, 0, 1, 2, 3], 2))
    if g.rnd.random() < 0.5:
        return f"{x}.clip({lo}, {hi})"
    return f"{_ns(g)}.clip({x}, {lo}, {hi})"


def _axis(g, ndim, allow_tuple=True):
    if ndim == 0 or g.rnd.random() < 0.25:
        return None
    if allow_tuple and ndim >= 2 and g.rnd.random() < 0.25:
        axes = sorted(g.rnd.sample(range(ndim), 2))
        return tuple(a - ndim if g.rnd.random() < 0.3 else a for a in axes)
    axis = g.rnd.randrange(ndim)
    return axis - ndim if g.rnd.random() < 0.3 else axis


REDUCTIONS = ["sum", "prod", "max", "min", "mean", "var", "std", "any", "all", "argmax",
              "argmin", "amax", "amin"]


def _reduction(g):
    x = g.operand()
    ndim = np.ndim(g.values[x])
    fn = g.rnd.choice(REDUCTIONS)
    axis = _axis(g, ndim, allow_tuple=fn not in ("argmax", "argmin"))
    kwargs = [] if axis is None and g.rnd.random() < 0.5 else [f"axis={axis!r}"]
    if g.rnd.random() < 0.4:
        kwargs.append("keepdims=True")
    if fn in ("var", "std") and g.rnd.random() < 0.3:
        kwargs.append("ddof=1")
    if g.rnd.random() < 0.4 and fn not in ("amax", "amin"):
        return f"{x}.{fn}({', '.join(kwargs)})"
    return f"{_ns(g)}.{fn}({', '.join([x] + kwargs)})"


def _cumulative(g):
    x = g.operand()
    axis = _axis(g, np.ndim(g.values[x]), allow_tuple=False)
    fn = g.rnd.choice(["cumsum", "cumprod"])
    return f"{_ns(g)}.{fn}({x}, axis={axis})" if axis is not None else f"{_ns(g)}.{fn}({x})"


def _reshape(g):
    x = g.operand()
    shape = np.shape(g.values[x])
    size = int(np.prod(shape))
    dims = []
    rest = size
    for _ in range(g.rnd.randint(0, 3)):
        divisors = [d for d in (1, 2, 3, 4, 5) if rest % d == 0] if rest else [1, 2, 0]
        d = g.rnd.choice(divisors)
        dims.append(d)
        rest = rest // d if d else rest
    if size and rest != 1:
        dims.append(rest)
    elif size == 0 and 0 not in dims:
        dims.append(0)
    if dims and size and g.rnd.random() < 0.3:
        dims[g.rnd.randrange(len(dims))] = -1
    g.rnd.shuffle(dims)
    if g.rnd.random() < 0.5:
        return f"{x}.reshape({tuple(dims)!r})"
    return f"{_ns(g)}.reshape({x}, {tuple(dims)!r})"


def _movement(g):
    x = g.operand()
    shape = np.shape(g.values[x])
    ndim = len(shape)
    ns = _ns(g)
    choices = [f"{ns}.expand_dims({x}, {g.rnd.randint(-ndim - 1, ndim)})", f"{ns}.ravel({x})",
               f"{ns}.flip({x})", f"{x}.T", f"{ns}.atleast_2d({x})",
               f"{ns}.broadcast_to({x}, {(g.rnd.choice([1, 2, 3]),) + shape!r})"]
    if ndim:
        perm = list(range(ndim))
        g.rnd.shuffle(perm)
        axis = g.rnd.randrange(ndim)
        choices += [f"{ns}.transpose({x}, {tuple(perm)!r})", f"{x}.transpose()",
                    f"{ns}.flip({x}, {axis})", f"{ns}.swapaxes({x}, 0, {axis - ndim})",
                    f"{ns}.moveaxis({x}, {axis}, 0)",
                    f"{ns}.repeat({x}, {g.rnd.randint(0, 3)}, axis={axis})",
                    f"{ns}.tile({x}, {g.rnd.randint(1, 3)})"]
        ones = [k for k, d in enumerate(shape) if d == 1]
        if ones:
            choices += [f"{ns}.squeeze({x})", f"{ns}.squeeze({x}, axis={g.rnd.choice(ones)})"]
        wider = tuple(3 if d == 1 and g.rnd.random() < 0.5 else d for d in shape)
        choices.append(f"{ns}.broadcast_to({x}, {wider!r})")
        choices += [f"{ns}.roll({x}, {g.rnd.randint(-3, 3)}, axis={axis})",
                    f"{ns}.flipud({x})", f"{ns}.sort({x}, axis={axis - ndim})",
                    f"{ns}.diff({x}, axis={axis})",
                    f"{ns}.pad({x}, {g.rnd.randint(0, 2)})"]
        if 0 not in shape:  # (NumPy refuses these modes on empty axes)
            mode = g.rnd.choice(["edge", "wrap", "reflect", "symmetric"])
            choices.append(f"{ns}.pad({x}, {g.rnd.randint(1, 3)}, mode={mode!r})")
    if ndim >= 2:
        k = g.rnd.randint(-1, 1)
        choices += [f"{ns}.rot90({x}, {g.rnd.randint(-1, 2)})", f"{ns}.fliplr({x})"]
        choices += [f"{ns}.tril({x}, {k})", f"{ns}.triu({x}, {k})", f"{ns}.diagonal({x})",
                    f"{ns}.diagonal({x}, {k}, {ndim - 2}, {ndim - 1})"]
    return g.rnd.choice(choices)


def _index(g):
    x = g.operand(lambda v: v.ndim >= 1)
    shape = np.shape(g.values[x])
    parts, ellipsis = [], False
    for d in shape[:g.rnd.randint(1, len(shape))]:
        r = g.rnd.random()
        if r < 0.25 and d:
            parts.append(str(g.rnd.randint(-d, d - 1)))
        elif r < 0.6:
            start = g.rnd.choice(["", "1", "-1", "0", "2"])
            stop = g.rnd.choice(["", "-1", "3", "1"])
            step = g.rnd.choice(["", "", "2", "-1", "-2"])
            parts.append(f"{start}:{stop}" + (f":{step}" if step else ""))
        elif r < 0.7:
            parts.append("None")
        elif r < 0.8 and not ellipsis:
            parts.append("...")
            ellipsis = True
            break
        elif d:
            idx = [g.rnd.randint(-d, d - 1) for _ in range(g.rnd.randint(1, 3))]
            parts.append(f"np.array({idx})")
        else:
            parts.append(":")
    return f"{x}[{', '.join(parts)}]"


def _join(g):
    x = g.operand()
    shape = np.shape(g.values[x])
    ns = _ns(g)
    if shape and g.rnd.random() < 0.6:
        axis = g.rnd.randrange(len(shape))
        other = list(shape)
        other[axis] = g.rnd.choice([1, 2, 0])
        y = g.pick(lambda v: v.shape == shape) if g.rnd.random() < 0.4 else None
        y = y or g.new_input(tuple(other), np.asarray(g.values[x]).dtype
                             if g.rnd.random() < 0.7 else None)
        if len(shape) >= 2 and axis == 0 and g.rnd.random() < 0.3:
            return f"{ns}.vstack([{x}, {y}])"
        return f"{ns}.concatenate([{x}, {y}], axis={axis})"
    y = g.pick(lambda v: v.shape == shape) or g.new_input(shape)
    fn = g.rnd.choice(["stack", "stack", "hstack"])
    axis = g.rnd.randint(-len(shape) - 1, len(shape))
    return f"{ns}.stack([{x}, {y}], axis={axis})" if fn == "stack" else f"{ns}.{fn}([{x}, {y}])"


def _contraction(g):
    x = g.operand(lambda v: v.ndim >= 1 and v.dtype != np.bool_)
    shape = np.shape(g.values[x])
    dtype = np.asarray(g.values[x]).dtype if g.rnd.random() < 0.8 else None
    n = shape[-1] if shape else g.rnd.choice([1, 2, 3])
    ns = _ns(g)
    form = g.rnd.choice(["matmul", "matvec", "dot", "einsum", "tensordot", "outer", "inner"])
    if form == "matvec":
        y = g.new_input((n,), dtype)
        return f"{x} @ {y}" if g.rnd.random() < 0.5 else f"{ns}.matmul({x}, {y})"
    if form == "outer":
        return f"{ns}.outer({x}, {g.new_input((g.rnd.choice([1, 2, 3]),), dtype)})"
    if form == "inner":
        return f"{ns}.inner({x}, {g.new_input((n,), dtype)})"
    y = g.new_input((n, g.rnd.choice([1, 2, 3])), dtype)
    if form == "matmul":
        return f"{x} @ {y}"
    if form == "dot":
        return f"{ns}.dot({x}, {y})"
    if form == "tensordot":
        return f"{ns}.tensordot({x}, {y}, axes=1)"
    letters = "ijkl"[:len(shape)]
    out = letters[:-1] + "m" if g.rnd.random() < 0.6 else "m"
    return f"{ns}.einsum('{letters},{letters[-1]}m->{out}', {x}, {y})"


CASTS = ["float32", "float64", "int32", "int64", "bool_", "uint8", "int8", "float16"]


def _astype(g):
    x = g.operand()
    v = np.asarray(g.values[x])
    casts = [c for c in CASTS if c not in ("float32", "float16")] if g.grad else CASTS
    target = np.dtype(getattr(np, g.rnd.choice(casts)))
    if v.dtype.kind == "f" and target.kind in "iu":
        info = np.iinfo(target)
        finite = np.isfinite(v).all()
        v = v.astype(np.float64)
        # Out-of-range float -> int conversions are undefined in C (and differ between NumPy
        # builds): not a valid program to compare.
        if not finite or (v.size and (v.min() <= info.min or v.max() >= info.max)):
            return None
    if v.dtype.kind == "i" and target.kind == "u" and v.size and v.min() < 0:
        return None
    return f"{x}.astype(np.{target.name})"


def _float_operand(g):
    return g.operand(lambda v: v.dtype.kind == "f" and v.ndim >= 1)


def _cond(g):
    x = g.operand(lambda v: v.dtype.kind == "f")
    y = g.pick(lambda v: v.dtype.kind != "b") or x
    branches = ["v * 2", "-v", "v + v", "abs(v)", "np.tanh(v)", "v - 1", "np.sin(v) * v"]
    t, f = g.rnd.sample(branches, 2)
    return f"tracejit.cond(np.sum({y}) > 0, lambda v: {t}, lambda v: {f}, {x})"


def _fori(g):
    x = g.operand(lambda v: v.dtype.kind == "f")
    shape, dtype = np.shape(g.values[x]), np.asarray(g.values[x]).dtype
    other = g.pick(lambda v: v.dtype == dtype and v.shape == shape and v is not g.values[x])
    term = f" + {other}" if other is not None else ""
    n = g.rnd.randint(0, 4)
    return f"tracejit.fori_loop(0, {n}, lambda i, c: np.tanh(c) * 0.5{term}, {x})"


def _scan(g):
    x = g.operand(lambda v: v.dtype.kind == "f" and v.ndim >= 1)
    which = g.rnd.choice(["[0]", "[1]"])
    return (f"tracejit.scan(lambda c, x: (c * 0.5 + x, np.sin(c) * x), "
            f"{x}[0] * 0, {x}){which}")


STATEMENTS = [(_unary, 20), (_binary, 25), (_where, 4), (_clip, 2), (_reduction, 14),
              (_cumulative, 3), (_reshape, 5), (_movement, 8), (_index, 8), (_join, 4),
              (_contraction, 4), (_astype, 3), (_cond, 1.5), (_fori, 1.5), (_scan, 1.5)]


def generate(rnd: random.Random, grad: bool = False, max_stmts: int = 8) -> Program:
    """One random valid program (valid: NumPy runs every statement)."""
    return Generator(rnd, grad, max_stmts).program()
