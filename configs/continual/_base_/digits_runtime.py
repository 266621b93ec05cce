# What the digits continual runs share: the shipped digits ViT with a zeroed, frozen 10-way head (each task's
# adapter carries its own head LoRA, so Arrow can route the head too), the replay memory and router of L2R, Arrow's
# defaults, every method, CPU.
model = dict(model='vit_digits_demo', pretrained=True, num_classes=10, zero_head=True)
memory = dict(per_task=20, sampler='random')  # 20 training images per task for the L2R router
router = dict(routers='model', mode='output', hidden=64, epochs=100, lr=1e-2)
arrow = dict(top_k=4, temperature=1.0)  # the Arrow paper's k
methods = ['oracle', 'l2r', 'arrow', 'uniform', 'seq_ft', 'nearest_prototype', 'simplecil']
seed = 0
device = 'cpu'
