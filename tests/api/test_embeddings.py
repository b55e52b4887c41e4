"""POST /v1/embeddings through the official SDK (over loopback and in process) and LangChain's OpenAIEmbeddings: the
inputs, both encodings, `dimensions`, the API's 400s, and vectors that put like texts together."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import openai
import pytest
from sdk_errors import sdk_error

from offline_assistants.api import create_app
from offline_assistants.engine import Engine
from offline_assistants.engine.embeddings import OPENAI_MODELS
from offline_assistants.testing import in_process_client

MODEL = "text-embedding-3-small"


@pytest.fixture(params=["http", "inproc"])
def app_sdk(request: pytest.FixtureRequest, engine: Engine) -> Iterator[openai.OpenAI]:
    """The SDK as an app makes it, over loopback and in process: without any_client's strict response validation,
    under which the SDK's own default (ask for base64, decode it after validating) fails its List[float] type,
    against the hosted API as well."""
    if request.param == "inproc":
        yield in_process_client(create_app(engine), max_retries=0)
        return
    strict: openai.OpenAI = request.getfixturevalue("client")
    with openai.OpenAI(base_url=str(strict.base_url), api_key="sk-local", max_retries=0,
                       http_client=openai.DefaultHttpxClient(verify=False)) as sdk:
        yield sdk


def vectors(response: Any) -> np.ndarray:
    return np.array([d.embedding for d in response.data], dtype=np.float32)


def test_a_string_a_list_and_token_ids(any_client: openai.OpenAI, engine: Engine) -> None:
    one = any_client.embeddings.create(input="A cat sat on the mat.", model=MODEL, encoding_format="float")
    assert one.object == "list" and one.model == MODEL and len(one.data) == 1
    assert one.data[0].object == "embedding" and one.data[0].index == 0 and len(one.data[0].embedding) == 256
    embedder = engine.embedder()  # the model the endpoint embeds with: counts are of its tokens
    ids = embedder.tokenize(["A cat sat on the mat."])[0].tolist()
    assert one.usage.prompt_tokens == one.usage.total_tokens == len(ids) > 0

    texts = ["The first text.", "A second one, a little longer than the first.", "Third."]
    many = any_client.embeddings.create(input=texts, model="text-embedding-ada-002", encoding_format="float")
    assert many.model == "text-embedding-ada-002" and [d.index for d in many.data] == [0, 1, 2]
    alone = np.stack([vectors(any_client.embeddings.create(input=t, model=MODEL, encoding_format="float"))[0]
                      for t in texts])
    assert np.allclose(vectors(many), alone, atol=1e-6)  # batching does not change a vector
    assert many.usage.prompt_tokens == sum(len(row) for row in embedder.tokenize(texts))

    by_ids = any_client.embeddings.create(input=ids, model=MODEL, encoding_format="float")
    assert np.allclose(vectors(by_ids), vectors(one), atol=1e-6) and by_ids.usage.prompt_tokens == len(ids)
    rows = [row.tolist() for row in embedder.tokenize(texts)]
    by_rows = any_client.embeddings.create(input=rows, model=MODEL, encoding_format="float")
    assert np.allclose(vectors(by_rows), vectors(many), atol=1e-6)


def test_base64_as_the_sdk_asks_and_decodes_it(app_sdk: openai.OpenAI) -> None:
    texts = ["Offline assistants embed locally.", "Vectors in base64 are float32, little-endian."]
    floats = vectors(app_sdk.embeddings.create(input=texts, model=MODEL, encoding_format="float"))
    # No encoding_format: the SDK asks for base64 and decodes it itself (numpy when installed, as here).
    raw = app_sdk.embeddings.with_raw_response.create(input=texts, model=MODEL)
    sent = raw.http_response.json()["data"]
    assert all(isinstance(d["embedding"], str) for d in sent)
    assert np.array_equal(vectors(raw.parse()), floats)  # the same float32 values, bit for bit
    # Asked for explicitly, base64 comes back as the string, to decode as the API documents it (read raw: the
    # SDK's type says a list of floats, which a client validating responses strictly, as these do, holds it to).
    explicit = app_sdk.embeddings.with_raw_response.create(input=texts, model=MODEL, encoding_format="base64")
    data = explicit.http_response.json()["data"]
    decoded = np.stack([np.frombuffer(base64.b64decode(d["embedding"]), dtype="<f4") for d in data])
    assert np.array_equal(decoded, floats)


def test_dimensions_cut_and_renormalise(app_sdk: openai.OpenAI) -> None:
    text = "Shorter vectors keep the first dimensions."
    full = vectors(app_sdk.embeddings.create(input=text, model=MODEL, encoding_format="float"))[0]
    short = vectors(app_sdk.embeddings.create(input=text, model=MODEL, dimensions=64))[0]  # in base64
    assert short.shape == (64,) and np.linalg.norm(short) == pytest.approx(1.0, abs=1e-5)
    assert np.allclose(short * np.linalg.norm(full[:64]), full[:64], atol=1e-6)  # the first 64, in proportion
    same = vectors(app_sdk.embeddings.create(input=text, model=MODEL, dimensions=256, encoding_format="float"))
    assert np.allclose(same[0], full, atol=1e-6)
    with pytest.raises(openai.BadRequestError) as exc:
        app_sdk.embeddings.create(input=text, model=MODEL, dimensions=257)
    body = sdk_error(exc)
    assert body["message"] == "Invalid value for 'dimensions' = 257. Must be less than or equal to 256."
    assert body["param"] == "dimensions"
    with pytest.raises(openai.BadRequestError) as exc:
        app_sdk.embeddings.create(input=text, model=MODEL, dimensions=0)
    assert sdk_error(exc)["code"] == "integer_below_min_value"


def bad(client: openai.OpenAI, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(openai.BadRequestError) as exc:
        client.embeddings.create(**{"model": MODEL, **kwargs})
    return sdk_error(exc)


def test_the_apis_400s(any_client: openai.OpenAI) -> None:
    def says(message: str, param: str | None = None, code: str | None = None, **kwargs: Any) -> None:
        body = bad(any_client, **kwargs)
        assert (body["message"], body["param"], body["code"]) == (message, param, code)

    says("Invalid 'input': input cannot be an empty string.", input="")
    says("Invalid 'input': input cannot be an empty array.", input=[])
    says("Invalid 'input[1]': input cannot be an empty string.", "input[1]", "invalid_value", input=["a", ""])
    says("Invalid 'input[0]': input cannot be an empty array.", "input[0]", "invalid_value", input=[[]])
    says("Invalid 'input': array length must be 2048 or less.", "input", input=["a"] * 2049)
    at_limit = any_client.embeddings.create(input=["a"] * 2048, model=MODEL, encoding_format="float")
    assert len(at_limit.data) == 2048  # the limit itself
    # 8192 tokens an input: one token per " word" in this tokenizer, so 8193 of them are over.
    says("Invalid 'input': maximum context length is 8192 tokens.", input="word" + " word" * 8192)
    says("Invalid 'input[1]': maximum input length is 8192 tokens.", "input[1]", "invalid_value",
         input=["fine", "word" + " word" * 8192])
    assert any_client.embeddings.create(input="word" + " word" * 8191, model=MODEL,
                                        encoding_format="float").usage.prompt_tokens == 8192
    says("Invalid 'input[2]': token id 32000 is not in the embedding model's vocabulary (ids 0 to 31999).",
         "input[2]", "invalid_value", input=[1, 2, 32000])
    says("Invalid 'input[1][0]': token id -1 is not in the embedding model's vocabulary (ids 0 to 31999).",
         "input[1][0]", "invalid_value", input=[[5], [-1]])
    says("Unknown parameter: 'colour'.", "colour", "unknown_parameter", input="a", extra_body={"colour": "red"})
    body = bad(any_client, input="a", model=None, extra_body={"model": None})
    assert body["param"] == "model"
    body = bad(any_client, input="a", encoding_format="hex")
    assert body["param"] == "encoding_format" and body["code"] == "invalid_value"


def test_over_300000_tokens_in_one_request(any_client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as exc:
        any_client.embeddings.create(input=[[100] * 8000] * 38, model=MODEL)
    assert exc.value.body == {"message": "Requested 304000 tokens, max 300000 tokens per request",
                              "type": "max_tokens_per_request", "param": None, "code": "max_tokens_per_request"}
    assert any_client.embeddings.create(input=[[100] * 7500] * 40, model=MODEL,
                                        encoding_format="float").usage.prompt_tokens == 300000


def test_like_texts_are_closer_than_unlike_ones(any_client: openai.OpenAI) -> None:
    texts = ["cat", "kitten", "spreadsheet",
             "How do I reset my password?", "I forgot my login password", "The weather in Paris is sunny today"]
    v = vectors(any_client.embeddings.create(input=texts, model=MODEL, encoding_format="float"))
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    sim = v @ v.T
    # Margins well past any float difference (0.57 against 0.07, 0.70 against 0.05 when written).
    assert sim[0, 1] > sim[0, 2] + 0.3
    assert sim[3, 4] > sim[3, 5] + 0.3


def test_models_lists_the_embedding_model_and_openais_names(any_client: openai.OpenAI) -> None:
    names = [m.id for m in any_client.models.list().data]
    assert "wordllama-l2_supercat-256" in names and set(OPENAI_MODELS) <= set(names)
    assert len(names) == len(set(names))
    # Its own name works as any other does, echoed.
    got = any_client.embeddings.create(input="hello", model="wordllama-l2_supercat-256", encoding_format="float")
    assert got.model == "wordllama-l2_supercat-256"


def test_langchain_openai_embeddings(client: openai.OpenAI) -> None:
    from langchain_openai import OpenAIEmbeddings

    # check_embedding_ctx_length=False sends the texts as they are. By default LangChain tokenizes them with
    # tiktoken (fetched from the network on first use) and sends OpenAI's token ids, which this server would read
    # as ids of its own embedding model's vocabulary.
    embeddings = OpenAIEmbeddings(base_url=str(client.base_url), api_key="x",  # type: ignore[arg-type]
                                  model=MODEL, check_embedding_ctx_length=False)
    docs = ["Cats are small furry pets that purr.", "The quarterly spreadsheet lists revenue by region.",
            "Paris is the capital of France."]
    doc_vectors = np.array(embeddings.embed_documents(docs), dtype=np.float32)
    query = np.array(embeddings.embed_query("Which pet purrs?"), dtype=np.float32)
    assert doc_vectors.shape == (3, 256) and query.shape == (256,)
    assert int(np.argmax(doc_vectors @ query)) == 0
    direct = vectors(client.embeddings.create(input=docs, model=MODEL, encoding_format="float"))
    assert np.allclose(doc_vectors, direct, atol=1e-6)


@pytest.mark.model  # loads a GGUF into this process: no fixture says so
def test_an_embedding_gguf(make_engine: Callable[..., Engine], make_client: Callable[..., openai.OpenAI]) -> None:
    from offline_assistants.llm.catalog import default_model

    # The bundled chat model stands in for an embedding GGUF: the path is the same (no pooling layer: mean-pooled).
    # Found as the server finds it: importing its package would import `llm` (tests/llm/test_catalog.py).
    bundled = default_model()
    assert bundled is not None
    path = str(bundled.path)
    engine = make_engine(embedding_model=Path(path))
    sdk = make_client(engine)
    name = "gguf:SmolLM2-135M-Instruct.Q4_1.gguf"
    assert name in [m.id for m in sdk.models.list().data]
    got = sdk.embeddings.create(input=["hello world", "a second text"], model=MODEL, encoding_format="float")
    ids = engine.embedder().tokenize(["hello world", "a second text"])
    assert vectors(got).shape == (2, 576) and got.usage.prompt_tokens == sum(len(row) for row in ids)
    by_ids = sdk.embeddings.create(input=ids[0].tolist(), model=MODEL, encoding_format="float")
    assert np.allclose(vectors(by_ids)[0], vectors(got)[0], atol=1e-5)
    assert sdk.embeddings.create(input="hi", model=name, encoding_format="float").model == name
    body = bad(sdk, input="hello", dimensions=64)  # whether a GGUF may be cut short is not in its metadata
    assert body["message"] == "This model does not support specifying dimensions."
    limit = engine.embedder().max_input_tokens  # the context it was opened with (2048), under its trained 8192
    assert limit == 2048
    body = bad(sdk, input=[5] * (limit + 1))
    assert body["message"] == f"Invalid 'input': maximum context length is {limit} tokens."
