from rerank_lib import CrossEncoder


def test_tiny_model_scores_pairs(tiny_model: CrossEncoder) -> None:
    scores = tiny_model.predict([("what is the capital of france", "paris"), ("a cat", "a dog sleeps")])
    assert scores.shape == (2,)
    assert ((scores > 0) & (scores < 1)).all()
