"""Fine-tuning: LoRA and QLoRA adapters from your data and your documents."""
