"""The sandbox example of docs/sandbox.rst, run by tests/test_docs_examples.py."""

from __future__ import annotations


def sandbox_walkthrough():
    import httpx

    from openhumans.client import OpenHumansClient
    from openhumans.sandbox import Sandbox

    with Sandbox(client_id="my-client", client_secret="my-secret") as oh:
        print(oh.base_url)  # e.g. http://127.0.0.1:54321

        alice = oh.create_member(username="alice")["project_member_id"]
        oh.add_files(alice, count=2, basename="steps.csv", content=b"day,steps\n")
        tokens = oh.issue_tokens(alice)  # as the token endpoint would answer

        with OpenHumansClient(tokens["access_token"], base_url=oh.base_url) as api:
            api.message("Hello", "Your data is ready.")
            for datafile in api.iter_files():
                download = httpx.get(datafile.download_url, follow_redirects=True)
                print(datafile.basename, download.content)

        print(oh.inbox()[0]["subject"])  # [Open Humans Project Message] Hello
        print(len(oh.files(alice)))  # 2
        oh.leave(alice, erasure_requested=True)  # revokes her tokens, sends the webhook
