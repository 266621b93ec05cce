# DAPT as the paper describes it, without the official code's SSF scale/shift: dynamic adapters and internal
# prompts only, 984,859 trainable (with head) instead of 1,087,771. No published accuracy for this variant.
_base_ = ['./dapt_point-mae-vit-s_300e_scanobjectnn-pb-t50-rs.py']
model = dict(
    plan=[dict(type='DynamicAdapter', targets='blocks.*.mlp', dim=64, dropout=0.2),
          dict(type='InternalPrompt', targets='blocks.*')],
)
