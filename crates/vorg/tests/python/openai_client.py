"""Drives vorg's /v1 front door with the official openai client, unchanged.

Usage: openai_client.py BASE_URL API_KEY RUN_ID
Prints one JSON line with what the client saw.
"""
import json
import sys

from openai import OpenAI

base_url, api_key, run_id = sys.argv[1], sys.argv[2], sys.argv[3]
client = OpenAI(base_url=base_url, api_key=api_key, default_headers={"x-vorg-run-id": run_id})

models = [m.id for m in client.models.list()]

completion = client.chat.completions.create(
    model="default",
    messages=[
        {"role": "system", "content": "You are the CTO of vorg."},
        {"role": "user", "content": "Give your standup update."},
    ],
)

stream = client.chat.completions.create(
    model="default",
    messages=[{"role": "user", "content": "Brainstorm ideas for the launch."}],
    stream=True,
    stream_options={"include_usage": True},
)
streamed_text = ""
stream_usage = None
for chunk in stream:
    if chunk.choices and chunk.choices[0].delta.content:
        streamed_text += chunk.choices[0].delta.content
    if chunk.usage is not None:
        stream_usage = chunk.usage.total_tokens

try:
    client.chat.completions.create(model="default", messages=[])
    unknown = "no error"
except Exception as e:  # the client raises its own error types
    unknown = type(e).__name__

print(json.dumps({
    "models": models,
    "text": completion.choices[0].message.content,
    "usage": completion.usage.total_tokens,
    "streamed_text": streamed_text,
    "stream_usage": stream_usage,
    "empty_messages_error": unknown,
}))
