//! The verified identity attached to a socket or request.

use uuid::Uuid;

use crate::domain::user::UserId;

/// A role from the token's `roles` (or `role`) claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// An end user.
    User,
    /// Restaurant staff.
    Staff,
    /// Restaurant manager.
    Manager,
    /// Acts anywhere.
    Admin,
    /// Another backend calling the REST API.
    Service,
}

impl Role {
    /// Parses a claim value; unknown roles are ignored by the caller.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "user" => Some(Role::User),
            "staff" => Some(Role::Staff),
            "manager" => Some(Role::Manager),
            "admin" => Some(Role::Admin),
            "service" => Some(Role::Service),
            _ => None,
        }
    }
}

/// Who a socket or request acts as. Fixed at connect; clients never send their own id.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The user id from `sub` (an integer or a string: [`UserId`]).
    pub user_id: UserId,
    /// Roles granted by the token.
    pub roles: Vec<Role>,
    /// Restaurants this principal may act in.
    pub restaurants: Vec<Uuid>,
    /// The `tenant_id` (or `tenantId`) claim: which `tenant:<id>` channel it may join.
    pub tenant_id: Option<String>,
    /// The `name` claim (a display name), trimmed, at most 200 characters.
    pub name: Option<String>,
    /// The token's `exp`, in seconds since the Unix epoch: a socket's identity ends then
    /// (plus `JWT_LEEWAY_SECS`).
    pub expires_at: i64,
}

impl Principal {
    /// Whether the token grants `role`.
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// `admin` may act anywhere.
    pub fn is_admin(&self) -> bool {
        self.has_role(Role::Admin)
    }

    /// `service` or `admin`: backends allowed to create notifications and restaurants.
    pub fn is_service_or_admin(&self) -> bool {
        self.has_role(Role::Service) || self.is_admin()
    }

    /// Roles that may change orders on a board (REST twins: staff+ or `service`).
    pub fn is_staff_or_above(&self) -> bool {
        self.rank() >= Role::Staff || self.has_role(Role::Service)
    }

    /// The highest of the ordered roles `user < staff < manager < admin` (REST rule);
    /// `service` is handled separately by callers since it may call every route.
    pub fn rank(&self) -> Role {
        self.roles
            .iter()
            .copied()
            .filter(|r| *r != Role::Service)
            .max()
            .unwrap_or(Role::User)
    }
}
