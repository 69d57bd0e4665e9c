"""Fine-tuning: training data from the train split, OpenAI jobs, and a local LoRA for the embedded model.

The commands live in `export` (`harness finetune export`), `openai_jobs` (`... openai`) and `local`
(`... local`); the other modules are their parts. Nothing is imported here, so `harness.finetune` costs
nothing until a command asks for it (the local one pulls in torch).
"""
