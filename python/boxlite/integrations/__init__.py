"""Adapters between BoxLite and agent frameworks. Each lives in a module of its own and
needs that framework's package (an optional extra); ``import boxlite`` never loads them.

    boxlite.integrations.openai_agents   a sandbox client for the OpenAI Agents SDK
                                         (``pip install 'boxlite[openai-agents]'``)
    boxlite.integrations.langchain       LangChain tools: python, shell, files on a box
                                         (``pip install 'boxlite[langchain]'``)
"""
