"""File search's retrieval core: pure Python, no SQL and no HTTP (the store and the engine call it).

    extract.py     bytes + filename -> text (txt, md, code, json, html, pdf, docx, pptx); typed failures
    tokens.py      the offline tokenizer chunk sizes are counted in (Llama-2 SentencePiece from wordllama)
    chunking.py    text -> overlapping token-bounded chunks with char offsets (auto = 800/400)
    embeddings.py  the Embedder protocol; wordllama (default, in the wheel) and any GGUF via llama-cpp-python
    ranking.py     safe FTS5 queries, BM25 + cosine fused into one score in [0, 1], merging across stores
    filters.py     OpenAI attribute filters: validate (with the bad path) and match

Heavy imports (pypdf, docx2txt, wordllama, llama_cpp) happen inside the functions that need them, so importing
this package costs nothing.
"""
