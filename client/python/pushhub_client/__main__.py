from pushhub_client.cli import main

raise SystemExit(main())
