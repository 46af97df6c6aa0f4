"""Tests of compressai_hqa.codec.batching: codes and pixels that depend on the image
alone, chunks that fit a memory budget decided before anything is allocated."""

from __future__ import annotations

import threading
import time

from functools import partial
from pathlib import Path

import pytest
import torch

from conftest import tiny_config

from compressai_hqa import HQA, Decoding, zoo
from compressai_hqa.codec import (
    MemoryLimitError,
    check_decode_memory,
    compress_images,
    decode_images,
    read_codes,
)
from compressai_hqa.codec.batching import (
    CHUNK_BYTES,
    MAX_CHUNK,
    Chunk,
    check_budget,
    chunk_size,
    image_bytes,
    run_chunk,
    run_chunks,
    workers,
)
from compressai_hqa.codec.commands import to_uint8
from compressai_hqa.codec.format import Header, ImageSize
from compressai_hqa.datasets import load_mnist
from compressai_hqa.models.memory import OVERHEAD


@pytest.fixture
def threads():
    """Restores the thread count a test changes."""
    previous = torch.get_num_threads()
    yield
    torch.set_num_threads(previous)


def test_a_chunk_is_padded_with_copies_and_runs_on_one_thread(threads) -> None:
    torch.set_num_threads(2)
    seen = []

    def fn(x: torch.Tensor) -> torch.Tensor:
        seen.append((x.clone(), torch.get_num_threads()))
        return x * 2

    items = torch.arange(6.0).view(3, 2)
    out = run_chunk(fn, items, 5)
    assert torch.equal(out, items * 2)
    chunk, count = seen[0]
    assert count == 1 and torch.get_num_threads() == 2  # restored
    assert torch.equal(chunk, torch.cat([items, items[:1], items[:1]]))
    for bad in (items[:0], torch.zeros(6, 2)):
        with pytest.raises(ValueError, match="1 to 5 items"):
            run_chunk(fn, bad, 5)
    assert chunk_size(1) == MAX_CHUNK and chunk_size(CHUNK_BYTES) == 1
    assert chunk_size(10 * CHUNK_BYTES) == 1 and chunk_size(CHUNK_BYTES // 3) == 3


def test_chunks_run_side_by_side_in_rounds_that_fit_the_budget(threads) -> None:
    """run_chunks: results in order and equal to run_chunk's; up to `workers`
    chunks at once (on other threads, one intra-op thread, gradients off), a round
    never over the budget; the caller's thread count restored after."""
    torch.set_num_threads(2)
    lock, running, log = threading.Lock(), [0], []

    def fn(x: torch.Tensor) -> torch.Tensor:
        with lock:
            running[0] += 1
            log.append((running[0], torch.get_num_threads(), torch.is_grad_enabled(),
                        threading.current_thread() is threading.main_thread()))  # fmt: skip
        time.sleep(0.2)  # long enough for a second worker to start
        with lock:
            running[0] -= 1
        return x * 3

    items = [torch.full((n, 2), float(i)) for i, n in enumerate((4, 1, 4, 2, 3))]
    expected = [run_chunk(fn, x, 4) for x in items]
    log.clear()
    jobs = [Chunk(fn, x, 4, need=10) for x in items]
    out = list(run_chunks(jobs, workers=2))
    assert all(torch.equal(a, b) for a, b in zip(out, expected, strict=True))
    assert max(n for n, *_ in log) == 2  # two at once
    assert all(t == 1 and not grad and not main for _, t, grad, main in log)
    assert torch.get_num_threads() == 2
    log.clear()
    out = list(run_chunks(jobs, workers=3, budget=15))  # 2 x 10 > 15
    assert all(torch.equal(a, b) for a, b in zip(out, expected, strict=True))
    assert max(n for n, *_ in log) == 1
    log.clear()
    list(run_chunks(jobs, workers=1))
    assert all(main for *_, main in log)  # one after another on this thread
    assert workers(torch.device("cpu"), True) == 2
    assert workers(torch.device("cpu"), False) == 1  # stochastic: one stream
    assert workers(torch.device("meta"), True) == 1


def _tiny_file(sizes) -> tuple[HQA, bytes]:
    torch.manual_seed(0)
    model = HQA(tiny_config(num_layers=2)).eval()
    images = [torch.rand(1, h, w) for h, w in sizes]
    return model, compress_images(model, images)


def test_the_budget_is_decided_from_the_header(threads) -> None:
    model, data = _tiny_file([(40, 40)] * 3)
    header, codes = read_codes(data, model)
    per_image = image_bytes(model, 40, 40, "argmin")
    chunk = chunk_size(per_image)
    need = chunk * per_image + OVERHEAD
    check_decode_memory(model, header, "argmin", need + 8 * 3 * 100 + 3 * 512)
    with pytest.raises(MemoryLimitError, match=r"40x40 images at layer 2 needs"):
        check_decode_memory(model, header, "argmin", need)
    with pytest.raises(MemoryLimitError, match="--max-memory"):
        next(decode_images(model, header, codes, max_memory=OVERHEAD))
    # sampling keeps more posterior-sized tensors (K = 256): a larger estimate
    mnist = HQA("mnist", num_layers=3)
    assert image_bytes(mnist, 40, 40, "sample") > image_bytes(mnist, 40, 40, "argmin")
    # a crafted header: one 8192x8192 image at layer 2, refused without a payload
    huge = Header(model="hqa-tiny", fingerprint=header.fingerprint, layer=2,
                  prior="uniform", codebook_size=16, factor=4,
                  sizes=(ImageSize(8192, 8192, 1),))  # fmt: skip
    with pytest.raises(MemoryLimitError, match="8192x8192"):
        check_decode_memory(model, huge)
    # many distinct sizes: a bound from the largest height and width
    sizes = [(h, 1) for h in range(1, 70)] + [(1, 3000)]
    with pytest.raises(MemoryLimitError, match="69x3000"):
        check_budget(model, sizes, "encode", image_bytes(model, 69, 3000, "encode"))
    check_budget(model, sizes, "encode", None)  # no limit
    # compress refuses an image before encoding it
    with pytest.raises(MemoryLimitError, match="encoding 64x64"):
        compress_images(model, [torch.rand(1, 64, 64)], max_memory=OVERHEAD)


def test_codes_do_not_depend_on_the_other_images(mnist_root: Path, threads) -> None:
    """Every layer: a digit compressed alone has the codes it has in a file of 256,
    at 1 and 2 threads (before, 996 of 1,000 differed at layer 1)."""
    stack = zoo.hqa(pretrained=True)
    digits = list(load_mnist(mnist_root, train=False).images[:256].unbind(0))
    picks = (0, 1, 17, 128, 255)
    for layer in range(1, 6):
        model = stack.truncate(layer).eval()
        for count in (1, 2):
            torch.set_num_threads(count)
            _, batch = read_codes(compress_images(model, digits), model)
            for i in picks:
                _, (alone,) = read_codes(compress_images(model, [digits[i]]), model)
                assert torch.equal(alone, batch[i]), (layer, count, i)


def _decoded(model: HQA, data: bytes) -> torch.Tensor:
    header, codes = read_codes(data, model)
    return torch.stack([to_uint8(x) for x in decode_images(model, header, codes)])


def test_pixels_do_not_depend_on_the_batch_order_or_threads(
    mnist_root: Path, threads
) -> None:
    """Every layer: the 8-bit decodes of a file of 256 digits at 1 and 2 threads,
    of the file in reverse order, and of files of 1, 2 and 7 of its digits are the
    same images (before, 118 of 1,000 layer-5 digits decoded to other PNGs in
    batches of 1 than of 256)."""
    stack = zoo.hqa(pretrained=True)
    digits = list(load_mnist(mnist_root, train=False).images[:256].unbind(0))
    for layer in range(1, 6):
        model = stack.truncate(layer).eval()
        data = compress_images(model, digits)
        torch.set_num_threads(1)
        reference = _decoded(model, data)
        torch.set_num_threads(2)
        assert torch.equal(_decoded(model, data), reference), layer
        reverse = _decoded(model, compress_images(model, digits[::-1]))
        assert torch.equal(reverse.flip(0), reference), layer
        for start, count in ((0, 1), (99, 1), (255, 1), (40, 2), (3, 7), (200, 7)):
            part = compress_images(model, digits[start : start + count])
            assert torch.equal(
                _decoded(model, part), reference[start : start + count]
            ), (layer, start, count)


@pytest.mark.parametrize("mode", ["sample", "average"])
def test_stochastic_decodes_are_a_function_of_the_file_and_the_decoding(
    threads, mode: str
) -> None:
    """Seeded sampling and averaging through the chunks: the model's decode of
    each padded chunk, drawing from one stream in file order; the same at 1 and 2
    threads and whatever the memory budget; another seed draws other images."""
    sizes = [(12, 12)] * 20 + [(9, 7)] * 3
    torch.manual_seed(1)
    model = HQA(tiny_config(num_layers=3)).eval()
    data = compress_images(model, [torch.rand(1, h, w) for h, w in sizes])
    header, codes = read_codes(data, model)
    decoding = Decoding(mode, temperature=1.5, num_samples=3, seed=7)

    def decoded(d: Decoding, max_memory: int | None = 1 << 30) -> torch.Tensor:
        images = decode_images(model, header, codes, d, max_memory)
        return torch.cat([x.reshape(-1) for x in images])

    bound, expected, start = decoding.bound(), [], 0
    for size, count in (((12, 12), 20), ((9, 7), 3)):
        chunk = chunk_size(image_bytes(model, *size, mode))
        decode = partial(model.decode, decoding=bound, size=size)
        run = torch.stack(codes[start : start + count])
        with torch.no_grad():
            for i in range(0, count, chunk):
                out = run_chunk(decode, run[i : i + chunk], chunk)
                expected.extend(x.reshape(-1) for x in out)
        start += count
    torch.set_num_threads(1)
    reference = decoded(decoding)
    assert torch.equal(reference, torch.cat(expected))
    assert torch.equal(decoded(decoding, None), reference)
    torch.set_num_threads(2)
    assert torch.equal(decoded(decoding), reference)
    assert not torch.equal(decoded(decoding.replace(seed=8)), reference)


def test_context_prior_codes_and_pixels_do_not_depend_on_the_batch(
    mnist_root: Path, threads
) -> None:
    """Every layer: a context-prior file of 256 digits and files of 1 and 7 of them
    (1 and 2 threads) hold the codes of the uniform prior's file and decode to the
    same 8-bit images: the entropy coding is per file, its probabilities integers."""
    stack = zoo.hqa(pretrained=True)
    digits = list(load_mnist(mnist_root, train=False).images[:256].unbind(0))
    for layer in range(1, 6):
        model = stack.truncate(layer).eval()
        torch.set_num_threads(1)
        _, uniform = read_codes(compress_images(model, digits), model)
        data = compress_images(model, digits, "context")
        torch.set_num_threads(2)
        _, codes = read_codes(data, model)
        assert all(torch.equal(a, b) for a, b in zip(codes, uniform, strict=True))
        reference = _decoded(model, compress_images(model, digits))
        for start, count in ((0, 1), (255, 1), (3, 7)):
            part = compress_images(model, digits[start : start + count], "context")
            assert torch.equal(
                _decoded(model, part), reference[start : start + count]
            ), (layer, start, count)
