from pushhub.cli import main

raise SystemExit(main())
