"""The routed MoE with a sigmoid-gated shared expert against the oracle Talker's MoE block (weights loaded
from a saved checkpoint through Checkpoint.load and stacked)."""
import pytest
import torch
from oracle import build_model, save_checkpoint

from omnigraph.nodes.common.linear import to_in_out
from omnigraph.nodes.common.moe import MoE, fuse_gate_up, stack_experts
from omnigraph.runtime.checkpoint import Checkpoint


@pytest.fixture(scope="module")
def talker(tmp_path_factory):
    model = build_model({"talker_config.text_config": dict(num_experts=6, num_experts_per_tok=3)}, seed=4)
    path = save_checkpoint(model, tmp_path_factory.mktemp("moe") / "ckpt")
    return model, Checkpoint.open(path)


def test_shared_expert_moe_matches_oracle_talker_block(talker):
    model, ckpt = talker
    c = ckpt.config["talker_config"]["text_config"]
    E = c.get("num_local_experts", c.get("num_experts"))  # the talker config spells it num_local_experts
    C, I, S = c["hidden_size"], c["moe_intermediate_size"], c["shared_expert_intermediate_size"]
    shapes = {"gate.weight": (E, C), "shared_expert_gate.weight": (1, C),
              "shared_expert.gate_proj.weight": (S, C), "shared_expert.up_proj.weight": (S, C),
              "shared_expert.down_proj.weight": (C, S)}
    for e in range(E):
        shapes |= {f"experts.{e}.gate_proj.weight": (I, C), f"experts.{e}.up_proj.weight": (I, C),
                   f"experts.{e}.down_proj.weight": (C, I)}
    assert E == 6
    t = ckpt.load("talker.model.layers.1.mlp.", shapes)
    gate_up, down = stack_experts(*[[t[f"experts.{e}.{n}_proj.weight"] for e in range(E)]
                                    for n in ("gate", "up", "down")])
    moe = MoE(C, E, c["num_experts_per_tok"], I, c["norm_topk_prob"], shared_hidden=S)
    moe.load_state_dict({"router.weight": to_in_out(t["gate.weight"]), "w_gate_up": gate_up, "w_down": down,
                         "shared.w_gate_up.weight": fuse_gate_up(t["shared_expert.gate_proj.weight"],
                                                                 t["shared_expert.up_proj.weight"]),
                         "shared.w_down.weight": to_in_out(t["shared_expert.down_proj.weight"]),
                         "shared_gate.weight": to_in_out(t["shared_expert_gate.weight"])})
    torch.manual_seed(0)
    x = torch.randn(1, 11, C)
    with torch.inference_mode():
        want = model.talker.model.layers[1].mlp(x)
        want = want[0] if isinstance(want, tuple) else want
        torch.testing.assert_close(moe(x), want, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(moe(x[:, 4:5]), want[:, 4:5], atol=1e-5, rtol=1e-5)
