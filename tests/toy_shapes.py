"""Graph shapes over the toy nodes: a few lines of YAML each and the outputs they must give (any executor)."""
import textwrap

from toy_nodes import Number

HEADER = "inputs: {n: {to: [src.n], default: 4}}\n"

SHAPES = {
    "linear": (HEADER + textwrap.dedent("""
        nodes:
          src: {kind: t_count}
          x2: {kind: t_scale}
          total: {kind: t_sum}
        edges: [src.items -> x2.items, x2.items -> total.items]
        outputs: {total: total.total}
        """), {"total": Number(12)}),
    "fan-out": (HEADER + textwrap.dedent("""
        nodes:
          src: {kind: t_count}
          x2: {kind: t_scale}
          x3: {kind: t_scale, config: {factor: 3}}
        edges: [src.items -> x2.items, src.items -> x3.items]
        outputs: {doubled: x2.items, tripled: x3.items}
        """), {"doubled": [Number(v) for v in (0, 2, 4, 6)], "tripled": [Number(v) for v in (0, 3, 6, 9)]}),
    "fan-in": (HEADER + textwrap.dedent("""
        nodes:
          src: {kind: t_count}
          x10: {kind: t_scale, config: {factor: 10}}
          zip: {kind: t_zip}
        edges: [src.items -> x10.items, src.items -> zip.a, x10.items -> zip.b]
        outputs: {items: zip.items}
        """), {"items": [Number(v) for v in (0, 11, 22, 33)]}),
    "streaming chain": (HEADER + textwrap.dedent("""
        nodes:
          src: {kind: t_count}
          a: {kind: t_scale}
          b: {kind: t_scale}
        edges: [src.items -> a.items, a.items -> b.items]
        outputs: {items: b.items}
        """), {"items": [Number(v) for v in (0, 4, 8, 12)]}),
    "loop edge": ("""
        inputs: {start: {to: [ask.start], default: 5}}
        nodes:
          ask: {kind: t_ask, config: {rounds: 3}}
          answer: {kind: t_scale, config: {factor: 2}}
        edges: [ask.questions -> answer.items]
        loops: [answer.items -> ask.answers]
        outputs: {questions: ask.questions, last: ask.last}
        """, {"questions": [Number(5), Number(11), Number(23)], "last": Number(47)}),
    "optional input absent": ("""
        inputs: {a: add.a, b: add.b}
        nodes:
          add: {kind: t_add}
        outputs: {total: add.total}
        """, {"total": Number(101)}),
}
SHAPE_INPUTS = {"optional input absent": {"a": Number(1)}}  # graph inputs a shape needs (none otherwise)
