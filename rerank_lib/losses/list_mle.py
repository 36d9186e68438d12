"""ListMLE: the Plackett-Luce likelihood of the target ranking, without position weights."""

from __future__ import annotations

from typing import Any

from torch import nn

from rerank_lib.losses.plist_mle import PListMLELoss
from rerank_lib.model import CrossEncoder


class ListMLELoss(PListMLELoss):
    """ListMLE: negative log-likelihood of the target ranking under the Plackett-Luce model of the scores.

    The same as PListMLELoss with ``lambda_weight=None``: every rank position counts equally. PListMLELoss usually
    ranks better because ranking metrics care most about the top.

    | inputs | labels |
    |---|---|
    | (query, [doc_1, ..., doc_n]) | [grade_1, ..., grade_n] |

    Lists may differ in length within a batch. Documents with a negative grade are ignored (not scored).

    Args:
        model: a CrossEncoder with ``num_labels == 1``.
        activation_fn: applied to the logits first.
        respect_input_order: True: the documents are listed in target order (best first); False: the target order
            is the grades, highest first.
        mini_batch_size: at most this many (query, document) pairs per forward pass; ``None``: all at once.

    References:
        - Xia et al., Listwise Approach to Learning to Rank: Theory and Algorithm, ICML 2008:
          https://dl.acm.org/doi/10.1145/1390156.1390306

    Example::

        loss = ListMLELoss(model, respect_input_order=False)
        value = loss(
            [["what is the capital of france"], [["berlin is big", "paris is the capital"]]],
            [torch.tensor([0.0, 1.0])],
        )
    """

    citation = """@inproceedings{xia2008listwise,
  title={Listwise Approach to Learning to Rank: Theory and Algorithm},
  author={Xia, Fen and Liu, Tie-Yan and Wang, Jue and Zhang, Wensheng and Li, Hang},
  booktitle={Proceedings of the 25th International Conference on Machine Learning},
  pages={1192--1199},
  year={2008}
}"""

    def __init__(
        self,
        model: CrossEncoder,
        activation_fn: nn.Module | None = None,
        respect_input_order: bool = True,
        mini_batch_size: int | None = None,
    ) -> None:
        super().__init__(
            model,
            lambda_weight=None,
            activation_fn=activation_fn,
            respect_input_order=respect_input_order,
            mini_batch_size=mini_batch_size,
        )

    def get_config_dict(self) -> dict[str, Any]:
        config = super().get_config_dict()
        del config["lambda_weight"]
        return config
