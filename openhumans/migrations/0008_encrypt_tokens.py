# Issue 10: tokens encrypted at rest. The columns stay text; the field encrypts on write and
# decrypts on read (openhumans.fields). The data step encrypts the tokens 0.2.0 and earlier
# versions of ours stored in plain text; reversed, it writes them back in plain text, so a
# project can still go back to 0.2.0.

from django.db import migrations

import openhumans.fields

TOKEN_MODELS = ("OpenHumansMember", "PendingDeauthNotice")
TOKENS = ("access_token", "refresh_token")


def encrypt_tokens(apps, schema_editor):
    alias = schema_editor.connection.alias
    for name in TOKEN_MODELS:
        model = apps.get_model("openhumans", name)
        rows = model.objects.using(alias)
        # Read through the field (plain text is returned as is), written back encrypted.
        for row in rows.values("pk", *TOKENS).iterator():
            pk = row.pop("pk")
            rows.filter(pk=pk).update(**row)


def decrypt_tokens(apps, schema_editor):
    connection = schema_editor.connection
    quote = connection.ops.quote_name
    for name in TOKEN_MODELS:
        model = apps.get_model("openhumans", name)
        table, pk = quote(model._meta.db_table), quote(model._meta.pk.column)
        # Plain text written with SQL: the field would encrypt it again.
        for row in model.objects.using(connection.alias).values("pk", *TOKENS).iterator():
            with connection.cursor() as cursor:
                cursor.execute(
                    f"UPDATE {table} SET access_token = %s, refresh_token = %s WHERE {pk} = %s",  # noqa: S608
                    [row["access_token"], row["refresh_token"], row["pk"]],
                )


class Migration(migrations.Migration):
    dependencies = [
        ("openhumans", "0007_reauthorization_and_replay_guard"),
    ]

    operations = [
        *(
            migrations.AlterField(
                model_name=model.lower(),
                name=token,
                field=openhumans.fields.EncryptedTokenField(),
            )
            for model in TOKEN_MODELS
            for token in TOKENS
        ),
        migrations.RunPython(encrypt_tokens, decrypt_tokens),
    ]
