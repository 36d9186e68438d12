"""RankNet: the pairwise logistic loss over every pair of documents with different grades."""

from __future__ import annotations

from typing import Any, Literal

from torch import nn

from rerank_lib.losses.lambda_loss import LambdaLoss, NoWeightingScheme
from rerank_lib.model import CrossEncoder


class RankNetLoss(LambdaLoss):
    """RankNet: ``-log2(sigmoid(sigma * (s_i - s_j)))`` for every pair with grade_i > grade_j, averaged over pairs.

    LambdaLoss with NoWeightingScheme: every mis-ordered pair costs the same wherever it sits in the ranking, so
    it optimizes pairwise accuracy rather than NDCG. The LambdaLoss weighting schemes usually rank better.

    | inputs | labels |
    |---|---|
    | (query, [doc_1, ..., doc_n]) | [grade_1, ..., grade_n] |

    Lists may differ in length within a batch. Documents with a negative grade are ignored (not scored).

    Args:
        model: a CrossEncoder with ``num_labels == 1``.
        k: only pairs within the top ``k`` predicted positions count; ``None``: all.
        sigma: slope of the pairwise sigmoid.
        eps: numerical floor, as in LambdaLoss.
        reduction_log: "binary" (log2) or "natural" (ln).
        activation_fn: applied to the logits first.
        mini_batch_size: at most this many (query, document) pairs per forward pass; ``None``: all at once.

    References:
        - Burges et al., Learning to Rank using Gradient Descent, ICML 2005:
          https://icml.cc/Conferences/2005/proceedings/papers/012_LearningToRank_BurgesEtAl.pdf
        - Wang et al., The LambdaLoss Framework for Ranking Metric Optimization, CIKM 2018.

    Example::

        loss = RankNetLoss(model)
        value = loss(
            [["what is the capital of france"], [["paris is the capital", "berlin is big"]]],
            [torch.tensor([1.0, 0.0])],
        )
    """

    citation = """@inproceedings{burges2005learning,
  title={Learning to Rank using Gradient Descent},
  author={Burges, Chris and Shaked, Tal and Renshaw, Erin and Lazier, Ari and Deeds, Matt and Hamilton, Nicole
    and Hullender, Greg},
  booktitle={Proceedings of the 22nd International Conference on Machine Learning},
  pages={89--96},
  year={2005}
}"""

    def __init__(
        self,
        model: CrossEncoder,
        k: int | None = None,
        sigma: float = 1.0,
        eps: float = 1e-10,
        reduction_log: Literal["natural", "binary"] = "binary",
        activation_fn: nn.Module | None = None,
        mini_batch_size: int | None = None,
    ) -> None:
        super().__init__(
            model,
            weighting_scheme=NoWeightingScheme(),
            k=k,
            sigma=sigma,
            eps=eps,
            reduction_log=reduction_log,
            activation_fn=activation_fn,
            mini_batch_size=mini_batch_size,
        )

    def get_config_dict(self) -> dict[str, Any]:
        config = super().get_config_dict()
        del config["weighting_scheme"]
        return config
