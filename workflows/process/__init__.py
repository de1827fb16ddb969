"""Running the diagrams: the engine's actions, SpiffWorkflow glue, the BPMN library, step rules,
service tasks, who does a task, task forms, incidents, the timer sweep and the read side of lists."""
