# PHA on the digits multi-task quick start with one domain per task, so that a sample's task can be told from its
# image and the retriever has something to find: digit on rotated_60, parity on rotated_90, at_least_5 on
# inverted, loops on noisy (in the quick start every task has the same images of all four domains, and retrieval is
# 25% by construction: each image retrieves one task, right for one of its four copies). Otherwise as
# pha_digits_multitask.py. tools/analysis/pha_retrieval.py reports its retrieval accuracy per task.
_base_ = ['./pha_digits_multitask.py']
task_domains = dict(digit='rotated_60', parity='rotated_90', at_least_5='inverted', loops='noisy')
_datasets = {task: dict(domain=[domain]) for task, domain in task_domains.items()}
train_dataloader = dict(dataset=dict(datasets=_datasets))
val_dataloader = dict(dataset=dict(datasets=_datasets))
test_dataloader = dict(dataset=dict(datasets=_datasets))
suite = dict(method='PHA', dataset='digits multi-task, one domain per task')
